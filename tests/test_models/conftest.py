import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(scope='module', autouse=True)
def mmpretrain_scope():
    """Build with mmpretrain's registries whatever scope an earlier test's Runner left current."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
