"""Image datasets: digits, MNIST-5k, photo patches and the user's own folders or archives."""

from flowforge_images.data.arrays import ImageArrays, ImageDataset, split_indices
from flowforge_images.data.digits import Digits
from flowforge_images.data.folder import ImageFolder
from flowforge_images.data.mnist import MNIST5k, load_mnist5k
from flowforge_images.data.photos import PhotoPatches

__all__ = [
    "Digits",
    "ImageArrays",
    "ImageDataset",
    "ImageFolder",
    "MNIST5k",
    "PhotoPatches",
    "load_mnist5k",
    "split_indices",
]
