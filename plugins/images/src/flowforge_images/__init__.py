"""flowforge-images: image data, the U-Net, generation, restoration, editing and LeNet metrics."""

from __future__ import annotations

import flowforge
from flowforge_images.data import Digits, ImageFolder, MNIST5k, PhotoPatches
from flowforge_images.metrics.sample_metrics import BitsPerDim, FDLenet
from flowforge_images.models import UNetParams, build_unet, parameter_counts
from flowforge_images.tasks.editing import ImageEditing
from flowforge_images.tasks.generation import ImageGeneration
from flowforge_images.tasks.restoration import ImageRestoration


@flowforge.hookimpl
def register_datasets(register):
    register("digits", Digits)
    register("mnist5k", MNIST5k)
    register("photo_patches", PhotoPatches)
    register("image_folder", ImageFolder)


@flowforge.hookimpl
def register_models(register):
    register("unet", build_unet, UNetParams, info=parameter_counts)


@flowforge.hookimpl
def register_metrics(register):
    register("fd_lenet", FDLenet)
    register("bits_per_dim", BitsPerDim)


@flowforge.hookimpl
def register_tasks(register):
    register("image_generation", ImageGeneration)
    register("image_restoration", ImageRestoration)
    register("image_editing", ImageEditing)
