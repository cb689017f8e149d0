# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The golden-image library, kept in Ceph RBD and nowhere else.

:class:`ImageLibrary` is what callers use: golden images
(:mod:`~bmi_driver.storage.ceph.golden`) and node disks
(:mod:`~bmi_driver.storage.ceph.node_disks`) over one connection pool.
What lives where in Ceph is :mod:`bmi_driver.storage.layout`.

Every operation borrows one connection from a small pool
(:mod:`bmi_driver.storage.ceph.rbd_utils`), is idempotent where the
operation allows, and undoes what it did when it fails part way.
"""

from bmi_driver.conf import CONF
from bmi_driver.storage.ceph import glance_images
from bmi_driver.storage.ceph import golden
from bmi_driver.storage.ceph import node_disks
from bmi_driver.storage.ceph import published
from bmi_driver.storage.ceph import rbd_utils

_CLIENTS = rbd_utils.ClientPool()


class ImageLibrary(golden.GoldenImages, node_disks.NodeDisks,
                   glance_images.GlanceImages, published.PublishedImages):
    """Golden images and node clones in Ceph RBD (and Glance's images).

    :param clients: the connection pool to borrow from (tests may pass
        their own); the process-wide pool by default.
    :param glance: a :class:`bmi_driver.storage.glance_client.GlanceClient`
        (tests may pass their own); loaded from ``[glance]`` on first use.
    """

    def __init__(self, clients=None, glance=None):
        self._clients = clients or _CLIENTS
        self._glance_client = glance

    @property
    def image_pool(self):
        return CONF.ceph.image_pool

    @property
    def clone_pool(self):
        return CONF.ceph.clone_pool

    @rbd_utils.retry_transient
    def check(self):
        """Connect and open the pools: raise a clear error if we cannot.

        :raises: CephConnectionError, CephPoolNotFound, CephError
        """
        with self._clients.get() as client:
            for pool in {self.image_pool, self.clone_pool}:
                client.ioctx(pool)
