"""Model bundle loading and batched inference (torch and torchvision only, plus our shared records)."""

from bot.classifier.bundle import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LABELS_HEADER,
    ModelBundle,
    build_model,
    classification_archs,
    load_bundle,
    read_labels,
    save_bundle,
)
from bot.classifier.calibration import photo_probabilities, probabilities
from bot.classifier.infer import (
    Classifier,
    cpu_count,
    decode_photo,
    load_model,
    make_transform,
    reference_predict,
    resolve_device,
)
from bot.classifier.precision import has_native_bf16, read_cpu_flags, resolve_dtype

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LABELS_HEADER",
    "Classifier",
    "ModelBundle",
    "build_model",
    "classification_archs",
    "cpu_count",
    "decode_photo",
    "load_bundle",
    "load_model",
    "make_transform",
    "photo_probabilities",
    "probabilities",
    "read_labels",
    "reference_predict",
    "resolve_device",
    "has_native_bf16",
    "read_cpu_flags",
    "resolve_dtype",
    "save_bundle",
]
