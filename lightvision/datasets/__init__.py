"""Data loaders: scikit-learn's digits and Fashion-MNIST, all offline.

Importing this package loads only numpy and the standard library.

- :func:`load_digits`: 1797 images 8x8, grey levels 0..16, 10 classes.
- :func:`load_fashion_mnist`: 28x28 grey images, 10 classes, from the full set when installed
  (Debian package ``dataset-fashion-mnist``, ``$LIGHTVISION_FASHION_MNIST`` or ``path=``) or from
  the stratified subset bundled with lightvision; :func:`fashion_mnist_dir` says which.
- :func:`make_actions`: seeded KTH-like action videos (stick figures, 160x120 grey, 25 fps,
  6 :data:`ACTIONS`, 4 scenarios) as :class:`ActionVideos`; :func:`train_test_split_by_actor`.
- :func:`make_cloud_scenes`: seeded RGB satellite scenes (procedural terrain with bright ground,
  fractal clouds, shadows) with exact per-image and per-patch cloud fractions, as
  :class:`CloudScenes`.
- :func:`make_semg`: seeded multi-subject forearm sEMG (8 channels at 2 kHz by default) with the
  wrist flexion-extension angle, per-subject electrode placement, gains and electromechanical
  delay, as :class:`SEMGRecordings` (with sliding :meth:`~SEMGRecordings.windows`).
"""

from .actions import ACTIONS, ActionVideos, make_actions, train_test_split_by_actor
from .clouds import CloudScenes, make_cloud_scenes
from .digits import load_digits
from .fashion_mnist import FASHION_MNIST_CLASSES, fashion_mnist_dir, load_fashion_mnist
from .semg import SEMGRecordings, make_semg

__all__ = [
    "ACTIONS",
    "FASHION_MNIST_CLASSES",
    "ActionVideos",
    "CloudScenes",
    "SEMGRecordings",
    "fashion_mnist_dir",
    "load_digits",
    "load_fashion_mnist",
    "make_actions",
    "make_cloud_scenes",
    "make_semg",
    "train_test_split_by_actor",
]
