"""Dataset registry. Each factory returns a :class:`registry.datasets.base.DataBundle`.

Common keyword arguments of every factory: ``root`` (the user's copy; defaults under
``$POOLREPRO_DATA``), ``train_subset`` / ``test_subset`` (class-balanced, seeded subsets
for the mini tier) and ``seed``.
Entry meta ``train_items``: the full training split's size (cost estimates of full-tier runs
use it without loading the data). A dataset that is missing or malformed raises
:class:`registry.datasets.base.DatasetError` naming the expected layout and the fix.
"""

from registry._registry import Registry

DATASETS = Registry("dataset")

_R = DATASETS.register
_R("synthetic", "registry.datasets.synthetic:synthetic",
   help="seeded class-template images (smoke tier); any size, channels, classes")
_R("fashion_mnist", "registry.datasets.fashion_mnist:fashion_mnist", aliases=("fmnist",),
   help="Fashion-MNIST 28x28x1 from Debian's dataset-fashion-mnist (60k/10k)",
   train_items=60_000)
_R("fashion_mnist_32", "registry.datasets.fashion_mnist:fashion_mnist_32",
   aliases=("fmnist32",),
   help="Fashion-MNIST padded to 32x32, 3 channels: runs CIFAR model code unchanged",
   train_items=60_000)
_R("cifar10", "registry.datasets.cifar:cifar10", aliases=("cifar_10",),
   help="CIFAR-10 from the official python pickle batches (cifar-10-batches-py)",
   train_items=50_000)
_R("cifar100", "registry.datasets.cifar:cifar100", aliases=("cifar_100",),
   help="CIFAR-100 from the official python pickle files (cifar-100-python)",
   train_items=50_000)
# user directories (item-decoding splits; nothing is downloaded)
_R("tiny_imagenet", "registry.datasets.imagefolder:tiny_imagenet",
   aliases=("tinyimagenet", "tiny_imagenet_200"),
   help="TinyImageNet-200 from the official extracted zip (train/<wnid>/images, val/)",
   train_items=100_000)
_R("imagenet", "registry.datasets.imagefolder:imagenet", aliases=("ilsvrc2012", "imagenet1k"),
   help="ILSVRC-2012 from an ImageFolder tree <root>/{train,val}/<wnid>/*.JPEG",
   train_items=1_281_167)
_R("imagefolder", "registry.datasets.imagefolder:imagefolder", aliases=("image_folder",),
   help="any <root>/{train,test}/<class>/<image> tree")
_R("ucf101", "registry.datasets.video_frames:ucf101", aliases=("ucf_101",),
   help="UCF-101 from extracted frames <root>/.../<class>/<video_id>/*.jpg (+ official splits)")
_R("hmdb51", "registry.datasets.video_frames:hmdb51", aliases=("hmdb_51",),
   help="HMDB-51 from extracted frames <root>/.../<class>/<video_id>/*.jpg (+ official splits)")
# tabular (S3Net's NTK regression, Fig. 3)
_R("boston_housing", "registry.datasets.tabular:boston_housing", aliases=("boston",),
   help="Boston housing regression (506 x 13), split as S3Net's NTK notebook (455/51)")
# derived from Fashion-MNIST (mini tier)
_R("fashion_mnist_64", "registry.datasets.derived:fashion_mnist_64", aliases=("fmnist64",),
   help="Fashion-MNIST resized to 56 and padded to 64x64, 3 channels (ImageNet-family models)")
_R("fashion_mnist_16", "registry.datasets.derived:fashion_mnist_16", aliases=("fmnist16",),
   help="Fashion-MNIST downsized to 16x16 (antialiased), 1 channel (thin-ResNet depth curves)",
   train_items=60_000)
_R("cluttered_fashion", "registry.datasets.derived:cluttered_fashion",
   aliases=("cluttered_fmnist",),
   help="Fashion-MNIST items at random positions on a cluttered 32x32 canvas, with object "
        "masks (saliency localisation)")
_R("moving_fashion", "registry.datasets.derived:moving_fashion",
   aliases=("moving_fashion_mnist", "moving_fmnist"),
   help="8-frame 64x64 clips of a Fashion-MNIST item drifting and bouncing (video models)")
# real photographs (information retention; no labels)
_R("sample_photos", "registry.datasets.photos:sample_photos", aliases=("photos",),
   help="12 photographs bundled in scikit-image's wheel (or root=DIR of images), 288x288 crops")
_R("div2k", "registry.datasets.photos:div2k", aliases=("div2k_valid",),
   help="DIV2K validation HR images (user copy: <root>/DIV2K_valid_HR), 600x600 crops")
