"""Action recognition from motion (seed #23): binary descriptor + binary Fisher vector against
HOF / MBH + Gaussian Fisher vector, on the generated KTH-like action videos.

Data: :func:`lightvision.datasets.make_actions` (seed ``SEED``), split by actor (9 of 25 test
actors, KTH's share). Quick profile: 8 actors x 4 scenarios x 6 actions, 50 frames per clip;
full: 25 actors, 75 frames. Every pipeline is :func:`lightvision.features.make_action_pipeline`
with its defaults (Farneback flow, 32 mixture components, LinearSVC C = 1).
"""

import time

import numpy as np

from lightvision.features import make_action_pipeline

from .common import PROFILE, SEED

DESCRIPTORS = ["binary", "hof", "mbh"]
VIDEOS = {"quick": {"n_actors": 8, "n_frames": 50},
          "full": {"n_actors": 25, "n_frames": 75}}[PROFILE]


def _actions():
    from lightvision.datasets import make_actions, train_test_split_by_actor

    data = make_actions(VIDEOS["n_actors"], n_frames=VIDEOS["n_frames"], random_state=SEED)
    return train_test_split_by_actor(data, test_size=9 / 25, random_state=SEED)


class ActionPipelineSuite:
    """Each pipeline fitted once on the training actors; timings on single test videos."""

    params = DESCRIPTORS
    param_names = ["descriptor"]
    timeout = 1800
    number = 1
    repeat = (3, 10, 10.0)
    warmup_time = 0

    def setup_cache(self):
        import cv2

        cv2.setNumThreads(1)  # the speed claims are per core
        train, test = _actions()
        results = {}
        for name in DESCRIPTORS:
            pipeline = make_action_pipeline(name, random_state=SEED)
            start = time.perf_counter()
            descriptors = pipeline["descriptor"].transform(list(train.videos))
            extract_seconds = time.perf_counter() - start
            start = time.perf_counter()
            pipeline["encoder"].fit(descriptors)
            vectors = pipeline["encoder"].transform(descriptors)
            encode_seconds = time.perf_counter() - start
            pipeline["svm"].fit(vectors, train.labels)
            error = float(np.mean(pipeline.predict(list(test.videos)) != test.labels))
            results[name] = {
                "pipeline": pipeline, "error": error,
                "frames_per_second": train.videos.shape[0] * train.videos.shape[1]
                / extract_seconds,
                "encode_seconds": encode_seconds,
                "bytes_per_region": pipeline["descriptor"].descriptor_bytes_,
                "regions_per_video": float(np.mean([len(d) for d in descriptors])),
            }
        return results

    setup_cache.timeout = 3600

    def setup(self, results, name):
        import cv2

        cv2.setNumThreads(1)
        self.pipeline = results[name]["pipeline"]
        _, test = _actions()
        self.video = test.videos[0]
        self.descriptors = self.pipeline["descriptor"].extract(self.video)

    def track_test_error(self, results, name):
        """Test error (1 - accuracy) over the 6 actions, test actors unseen in training."""
        return results[name]["error"]

    track_test_error.unit = "fraction"

    def track_seconds_per_1000_frames(self, results, name):
        """Descriptor extraction including Farneback flow, one OpenCV thread, training set
        (1000 / frames per second; the target is <= 5 s, i.e. >= 200 frames/s)."""
        return 1000 / results[name]["frames_per_second"]

    track_seconds_per_1000_frames.unit = "seconds"

    def track_bytes_per_region(self, results, name):
        return results[name]["bytes_per_region"]

    track_bytes_per_region.unit = "bytes"

    def track_encode_seconds_training_set(self, results, name):
        """Fitting the mixture and encoding every training video."""
        return results[name]["encode_seconds"]

    track_encode_seconds_training_set.unit = "seconds"

    def time_extract_one_video(self, results, name):
        self.pipeline["descriptor"].extract(self.video)

    def peakmem_extract_one_video(self, results, name):
        self.pipeline["descriptor"].extract(self.video)

    def time_encode_one_video(self, results, name):
        self.pipeline["encoder"].encode(self.descriptors)

    def time_predict_one_video(self, results, name):
        self.pipeline.predict([self.video])


class FisherEncodingSuite:
    """The binary Fisher vector against scikit-image's Gaussian ``fisher_vector`` for the same
    number of descriptors, components and dimensions (96 bits / 96 floats), timed in the same
    run: one video's worth (600 descriptors, 16 components, the common case) and 20,000
    descriptors with 64 components. Skipped when scikit-image is not installed."""

    params = [600, 20_000]
    param_names = ["n_descriptors"]
    number = 1
    repeat = (5, 20, 20.0)

    def setup(self, n_descriptors):
        try:
            from skimage.feature import fisher_vector
        except ImportError as error:
            raise NotImplementedError("scikit-image is not installed") from error
        from sklearn.mixture import GaussianMixture

        from lightvision.features import BinaryFisherVector

        n_components = 16 if n_descriptors < 1000 else 64
        rng = np.random.default_rng(SEED)
        bits = (rng.random((n_descriptors, 96)) < rng.random(96)).astype(np.uint8)
        self.packed = np.packbits(bits, axis=1)
        self.binary = BinaryFisherVector(n_components, max_iter=20,
                                         random_state=SEED).fit([self.packed])
        self.floats = bits.astype(np.float64)
        self.gmm = GaussianMixture(n_components, covariance_type="diag", max_iter=20,
                                   random_state=SEED).fit(self.floats)
        self.skimage_fisher_vector = fisher_vector

    def time_binary_fisher_vector(self, n_descriptors):
        self.binary.encode(self.packed)

    def time_skimage_fisher_vector(self, n_descriptors):
        self.skimage_fisher_vector(self.floats, self.gmm)
