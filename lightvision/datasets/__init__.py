"""Data loaders: scikit-learn's digits and Fashion-MNIST, all offline.

Importing this package loads only numpy and the standard library.

- :func:`load_digits`: 1797 images 8x8, grey levels 0..16, 10 classes.
- :func:`load_fashion_mnist`: 28x28 grey images, 10 classes, from the full set when installed
  (Debian package ``dataset-fashion-mnist``, ``$LIGHTVISION_FASHION_MNIST`` or ``path=``) or from
  the stratified subset bundled with lightvision; :func:`fashion_mnist_dir` says which.
- :func:`make_actions`: seeded KTH-like action videos (stick figures, 160x120 grey, 25 fps,
  6 :data:`ACTIONS`, 4 scenarios) as :class:`ActionVideos`; :func:`train_test_split_by_actor`.
"""

from .actions import ACTIONS, ActionVideos, make_actions, train_test_split_by_actor
from .digits import load_digits
from .fashion_mnist import FASHION_MNIST_CLASSES, fashion_mnist_dir, load_fashion_mnist

__all__ = [
    "ACTIONS",
    "FASHION_MNIST_CLASSES",
    "ActionVideos",
    "fashion_mnist_dir",
    "load_digits",
    "load_fashion_mnist",
    "make_actions",
    "train_test_split_by_actor",
]
