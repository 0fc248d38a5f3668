"""`build_default_dataset`: a Noise2Noise data set made offline from images that ship inside
installed packages (scikit-image, scikit-learn, matplotlib), in the course's format.

Training sources (photographs, textures, text; grey ones replicated to 3 channels):
    scikit-image: astronaut, camera, coffee, coins, brick, grass, gravel, hubble_deep_field,
        ihc (immunohistochemistry), motorcycle_left, page, retina, rocket, text;
    scikit-learn: china; matplotlib: Minduka_Present_Blue_Pack.
Held-out validation sources (never cropped for training):
    scikit-image: chelsea (a cat); scikit-learn: flower; matplotlib: grace_hopper.
Training crops are recoloured at random (`random_colours`: hue, saturation, inversion) before
the noise is drawn, so a network meets more colours than these photographs hold; validation
crops keep their own colours.
Left out: motorcycle_right (the stereo twin of motorcycle_left, so it would leak into
validation), synthetic or nearly blank images (chessboard, color wheel, logos, phantom, horse,
cell, clock, microaneurysms, moon), and every image scikit-image would have to download.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from .images import image_size, read_image
from .synthesis import Pairs, Source, synthesize_pairs

_FOLDERS = {"skimage": "data", "sklearn": "datasets/images", "matplotlib": "mpl-data/sample_data"}


@dataclass(frozen=True)
class PackagedImage:
    """An image file inside an installed package: `package` is "skimage", "sklearn" or
    "matplotlib"."""

    package: str
    name: str

    def path(self) -> Path:
        """Where the file lies; found without importing the package (scikit-learn's datasets
        alone take seconds to import)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            raise FileNotFoundError(f"build_default_dataset: {self.package} is not installed")
        return Path(spec.origin).parent / _FOLDERS[self.package] / self.name

    def existing_path(self) -> Path:
        path = self.path()
        if not path.is_file():
            raise FileNotFoundError(
                f"build_default_dataset: the installed {self.package} does not ship {self.name} "
                f"(looked for {path}); install the versions in pyproject.toml, or build from "
                f"your own images with dataset_from_folder")
        return path

    def load(self) -> Tensor:
        """→ uint8 (3, H, W)."""
        return read_image(self.existing_path())

    def source(self) -> Source:
        """(loader, (H, W)) for `synthesize_pairs`; reads only the file's header."""
        return self.load, image_size(self.existing_path())


_SKIMAGE_TRAIN = ("astronaut.png", "camera.png", "coffee.png", "coins.png", "brick.png",
                  "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png",
                  "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png")
TRAIN_SOURCES = (*(PackagedImage("skimage", n) for n in _SKIMAGE_TRAIN),
                 PackagedImage("sklearn", "china.jpg"),
                 PackagedImage("matplotlib", "Minduka_Present_Blue_Pack.png"))
VAL_SOURCES = (PackagedImage("skimage", "chelsea.png"), PackagedImage("sklearn", "flower.jpg"),
               PackagedImage("matplotlib", "grace_hopper.jpg"))


def build_default_dataset(n_train: int = 50_000, n_val: int = 1_000, seed: int = 0,
                          noise: str = "gaussian", *, colour_augment: bool = True,
                          **noise_kw: float) -> Pairs:
    """→ ((noisy_1, noisy_2), (noisy_val, clean_val)), uint8 (n, 3, 32, 32) each.

    Deterministic for a given seed and installed packages, offline, silent. Random 32×32 crops
    of TRAIN_SOURCES at several scales, flipped/rotated, in random colours (`random_colours`;
    colour_augment=False keeps the photographs' own), each with two independent noise draws;
    validation crops come from VAL_SOURCES only, in their own colours. noise / noise_kw: see
    `add_noise` (default: gaussian, sigma 25/255).
    """
    return synthesize_pairs([s.source() for s in TRAIN_SOURCES], [s.source() for s in VAL_SOURCES],
                            n_train, n_val, seed, noise, noise_kw, where="build_default_dataset",
                            colour_augment=colour_augment)
