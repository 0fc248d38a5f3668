"""The student's side of the task tests: one module per test module (test_t01_modules.py →
probes/t01_modules.py), whose functions build the student's layers from the data a test sends,
call them and return plain data (tensors, numbers, strings, lists, dicts). They compute nothing
that decides a verdict: the tests compare what they return with torch, in their own process."""
