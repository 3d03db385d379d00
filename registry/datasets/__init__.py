"""Dataset registry. Each factory returns a :class:`registry.datasets.base.DataBundle`.

Common keyword arguments of every factory: ``root`` (the user's copy; defaults under
``$POOLREPRO_DATA``), ``train_subset`` / ``test_subset`` (class-balanced, seeded subsets
for the mini tier) and ``seed``. A dataset that is missing or malformed raises
:class:`registry.datasets.base.DatasetError` naming the expected layout and the fix.
"""

from registry._registry import Registry

DATASETS = Registry("dataset")

_R = DATASETS.register
_R("synthetic", "registry.datasets.synthetic:synthetic",
   help="seeded class-template images (smoke tier); any size, channels, classes")
_R("fashion_mnist", "registry.datasets.fashion_mnist:fashion_mnist", aliases=("fmnist",),
   help="Fashion-MNIST 28x28x1 from Debian's dataset-fashion-mnist (60k/10k)")
_R("fashion_mnist_32", "registry.datasets.fashion_mnist:fashion_mnist_32",
   aliases=("fmnist32",),
   help="Fashion-MNIST padded to 32x32, 3 channels: runs CIFAR model code unchanged")
_R("cifar10", "registry.datasets.cifar:cifar10", aliases=("cifar_10",),
   help="CIFAR-10 from the official python pickle batches (cifar-10-batches-py)")
_R("cifar100", "registry.datasets.cifar:cifar100", aliases=("cifar_100",),
   help="CIFAR-100 from the official python pickle files (cifar-100-python)")
