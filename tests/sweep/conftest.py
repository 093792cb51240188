import logging
import warnings

import cloudpickle
import pytest

from tests.sweep import fakes

# Worker processes cannot import the test package: send the stand-in backend by value.
cloudpickle.register_pickle_by_value(fakes)

#: A 3-day slice of the bundled sample around the 2025-10-10 crash.
SINCE, UNTIL = "2025-10-08", "2025-10-11"


@pytest.fixture
def store_dir(tmp_path_factory):
    """An empty user store: load_market falls back to the bundled sample."""
    return str(tmp_path_factory.mktemp("store"))


@pytest.fixture
def base_settings(store_dir):
    return {
        "strategy": fakes.STRATEGY,
        "since": SINCE,
        "until": UNTIL,
        "data_dir": store_dir,
    }


@pytest.fixture(scope="module")
def thread_client():
    """Two single-threaded workers inside this process (cheap: no process start)."""
    from distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def process_cluster():
    """A local Dask cluster of two worker processes, reached by its scheduler address."""
    from distributed import LocalCluster

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    yield cluster
    cluster.close()
