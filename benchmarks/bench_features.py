"""Every registered feature extractor, with a linear SVM, on digits and Fashion-MNIST.

Parametrised over :data:`lightvision.registry.FEATURES`. Constructor arguments are the entry's
``bench_params`` updated by its ``dataset_params[dataset]`` metadata (e.g. smaller patches for
8x8 digits). Each (feature, dataset) pair is fitted once in ``setup_cache``; the linear SVM is
scikit-learn's ``LinearSVC`` (liblinear, as in Chan's and Verma's code).
"""

import time

from sklearn.svm import LinearSVC

from lightvision.registry import FEATURES

from .common import SEED, raw_images

#: Feature extractors of images (videos and descriptor sets are in bench_motion.py).
NAMES = [name for name in FEATURES.list()
         if FEATURES.get(name).meta.get("input", "images") == "images"]
DATASETS = ["digits", "fashion_mnist"]
SVM_C = 1.0  # [INTERP] one fixed C for every feature; the papers tune C per data set


def feature_params(entry, dataset):
    """Constructor arguments of ``entry`` for ``dataset`` (bench_params + per-dataset meta)."""
    return {**entry.bench_params, **entry.meta.get("dataset_params", {}).get(dataset, {}),
            "random_state": SEED}


def _fit(entry, params, X, y):
    est = entry.create(**params)
    return est.fit(X, y) if "supervised" in entry.tags else est.fit(X)


def svm_error(train_features, y_train, test_features, y_test):
    """Test error of a linear SVM trained on the given features."""
    svm = LinearSVC(C=SVM_C, random_state=SEED, max_iter=5000)
    return 1.0 - svm.fit(train_features, y_train).score(test_features, y_test)


class FeatureSuite:
    params = (NAMES, DATASETS)
    param_names = ["feature", "dataset"]
    timeout = 1800
    number = 1
    repeat = (1, 3, 10.0)
    warmup_time = 0

    def setup_cache(self):
        """Fit every feature on every dataset; keep the fitted extractor and SVM test error."""
        results = {}
        for name in NAMES:
            entry = FEATURES.get(name)
            for dataset in DATASETS:
                (Xtr, ytr), (Xte, yte) = raw_images(dataset)
                start = time.perf_counter()
                est = _fit(entry, feature_params(entry, dataset), Xtr, ytr)
                fit_seconds = time.perf_counter() - start
                error = svm_error(est.transform(Xtr), ytr, est.transform(Xte), yte)
                results[name, dataset] = {"estimator": est, "error": error,
                                          "fit_seconds": fit_seconds}
        return results

    setup_cache.timeout = 3600

    def setup(self, results, name, dataset):
        self.entry = FEATURES.get(name)
        self.fitted = results[name, dataset]["estimator"]
        (self.X_train, self.y_train), (self.X_test, _) = raw_images(dataset)

    def track_test_error(self, results, name, dataset):
        """Linear-SVM test error (1 - accuracy) on the features."""
        return results[name, dataset]["error"]

    track_test_error.unit = "fraction"

    def time_fit(self, results, name, dataset):
        _fit(self.entry, feature_params(self.entry, dataset), self.X_train, self.y_train)

    def time_transform_test_set(self, results, name, dataset):
        self.fitted.transform(self.X_test)

    def peakmem_transform_test_set(self, results, name, dataset):
        self.fitted.transform(self.X_test)


class RawPixelSuite:
    """The baseline the features must beat: a linear SVM on raw pixels (scaled to [0, 1])."""

    params = DATASETS
    param_names = ["dataset"]

    def track_test_error(self, dataset):
        (Xtr, ytr), (Xte, yte) = raw_images(dataset)
        scale = float(Xtr.max())
        return svm_error(Xtr.reshape(len(Xtr), -1) / scale, ytr, Xte.reshape(len(Xte), -1) / scale,
                         yte)

    track_test_error.unit = "fraction"


class PCANetThroughputSuite:
    """PCANet's MNIST configuration on 1,000 28x28 images: the whole transform against the two
    convolution stages alone (torch ``conv2d`` with the learned filters, same batches), timed
    in the same run. Images/s = 1000 / time; the conv2d share is the ratio of the two."""

    number = 1
    repeat = (5, 20, 20.0)

    def setup(self):
        import torch

        from lightvision.features import PCANet

        (X, _), (X_test, _) = raw_images("fashion_mnist")
        self.net = PCANet(random_state=SEED).fit(X[:500])
        self.images = X_test[:1000]
        self.batches = torch.from_numpy(self.images).float().unsqueeze(1).split(
            self.net.batch_size)
        self.banks = [torch.from_numpy(f).float() for f in self.net.filters_]

    def _conv2d_only(self):
        import torch.nn.functional as F

        for x in self.batches:
            for stage, weight in enumerate(self.banks):
                x = x if stage == 0 else x.reshape(-1, 1, *x.shape[-2:])
                x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)

    def time_transform_1000_images(self):
        self.net.transform(self.images)

    def time_conv2d_only_1000_images(self):
        self._conv2d_only()

    def track_transform_over_conv2d_time(self):
        """Transform time / conv2d-only time (median of 7 each, after one warm-up call each):
        1 / the fraction of conv2d throughput the whole transform reaches."""
        import statistics
        import timeit

        def median_seconds(function):
            function()
            return statistics.median(timeit.repeat(function, number=1, repeat=7))

        transform = median_seconds(lambda: self.net.transform(self.images))
        return transform / median_seconds(self._conv2d_only)

    track_transform_over_conv2d_time.unit = "ratio"
