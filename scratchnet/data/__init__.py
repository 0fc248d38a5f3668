"""Data for the Noise2Noise denoiser: the course's file format, a default data set built offline
from images shipped in installed packages, synthetic noise models, and a batch loader.

    train_path, val_path = ensure_data()                # builds data/*.pkl once if absent
    noisy_1, noisy_2 = load_pairs(train_path)           # uint8 (N, 3, 32, 32) each
    for x, y in PairLoader(noisy_1, noisy_2, batch_size=64, augment=True): ...
"""
from .colour import random_colours
from .course_format import load_pairs, save_pairs
from .default_dataset import TRAIN_SOURCES, VAL_SOURCES, PackagedImage, build_default_dataset
from .folder import dataset_from_folder, folder_split
from .images import read_image
from .loader import PairLoader
from .noise import NOISE_MODELS, add_noise
from .paths import TRAIN_FILE, VAL_FILE, default_data_dir, ensure_data

__all__ = [
    "NOISE_MODELS", "TRAIN_FILE", "TRAIN_SOURCES", "VAL_FILE", "VAL_SOURCES", "PackagedImage",
    "PairLoader", "add_noise", "build_default_dataset", "dataset_from_folder",
    "default_data_dir", "ensure_data", "folder_split", "load_pairs", "random_colours", "read_image",
    "save_pairs",
]
