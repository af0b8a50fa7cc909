"""Backbone: ResNet-50/101 (He et al. 2016) and the feature pyramid (FPN, Lin et al. 2017).

Shape shorthand: B = batch, H, W = molded image height and width (multiples
of 64). Stage i of the ResNet has stride 2**i:
    C1 [B, H/4, W/4, 64]   (after the stem max-pool)
    C2 [B, H/4, W/4, 256]   C3 [B, H/8, W/8, 512]
    C4 [B, H/16, W/16, 1024]   C5 [B, H/32, W/32, 2048]
The pyramid P2..P6 has TOP_DOWN_PYRAMID_SIZE channels at strides 4..64.

Layer names are Matterport's (`conv1`, `bn_conv1`, `res2a_branch2a`,
`bn2a_branch2a`, ..., `res5c_out`, `fpn_c5p5`, ..., `fpn_p6`): weight files
are matched by them and `train(layers=...)` selects layers by them.
"""

import keras
from keras import layers as KL

# Identity blocks after the first (conv) block of stage 4.
_STAGE4_IDENTITY_BLOCKS = {"resnet50": 5, "resnet101": 22}


@keras.saving.register_keras_serializable(package="mrcnn")
class BatchNorm(KL.BatchNormalization):
    """Batch normalization that can be frozen, as Matterport's `BatchNorm`.

    Mask R-CNN trains with small batches, which make batch statistics
    useless, so by default (``TRAIN_BN = False``) the backbone's BatchNorm
    layers are frozen: they always run in inference mode (moving statistics)
    and their gamma/beta are not trainable, whatever ``training`` the model
    is called with and whatever ``layer.trainable`` is later set to.

    Args:
        train_bn: False freezes the layer (see above). True or None: an
            ordinary BatchNormalization whose mode follows the call-time
            ``training`` argument.
        folded: True makes the layer the identity: its statistics, gamma
            and beta were folded into the convolution before it
            (`mrcnn.nn.fold.fold_batchnorm`, for export).
        **kwargs: as keras.layers.BatchNormalization (axis=-1,
            momentum=0.99, epsilon=1e-3 as in Keras 2).

    Matterport-style use also works: ``BatchNorm(name=...)(x, training=False)``
    on a symbolic tensor freezes the layer (Keras 3 would otherwise let the
    model-level ``training`` override the value stored at graph build time).

    Inputs: [..., channels]; output: same shape.
    """

    def __init__(self, *args, train_bn=None, folded=False, **kwargs):
        self.train_bn = None
        super().__init__(*args, **kwargs)
        self.train_bn = None if train_bn is None else bool(train_bn)
        self.folded = bool(folded)
        if self.train_bn is False:
            self.trainable = False

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        # A frozen layer stays frozen: set_trainable("all") must not make
        # gamma/beta trainable when TRAIN_BN is False.
        if getattr(self, "train_bn", None) is False:
            value = False
        KL.BatchNormalization.trainable.fset(self, value)

    def __call__(self, *args, **kwargs):
        training = kwargs.get("training")
        if isinstance(training, bool) and self.train_bn is None and \
                _is_symbolic(args[0] if args else kwargs.get("inputs")):
            # Matterport's graph code passes training=train_bn while building.
            self.train_bn = training
            if training is False:
                self.trainable = False
        return super().__call__(*args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        if self.folded:
            return inputs
        if self.train_bn is False:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        config = super().get_config()
        config["train_bn"] = self.train_bn
        if self.folded:
            config["folded"] = True
        return config


def _is_symbolic(x):
    """True for a KerasTensor (functional graph construction)."""
    return isinstance(x, keras.KerasTensor)


def identity_block(input_tensor, kernel_size, filters, stage, block,
                   use_bias=True, train_bn=True):
    """ResNet bottleneck block whose shortcut is the identity.

    Args:
        input_tensor: [B, h, w, filters[2]].
        kernel_size: size of the middle conv's kernel (3).
        filters: (f1, f2, f3) channels of the three convs.
        stage: int stage number (2..5), used in layer names.
        block: 'a', 'b', ... block letter, used in layer names.
        use_bias: whether the convs have a bias (Matterport: True).
        train_bn: False freezes the BatchNorm layers (see BatchNorm).

    Returns:
        [B, h, w, f3], output of layer ``res{stage}{block}_out``.
    """
    nb_filter1, nb_filter2, nb_filter3 = filters
    conv_name_base = "res" + str(stage) + block + "_branch"
    bn_name_base = "bn" + str(stage) + block + "_branch"

    x = KL.Conv2D(nb_filter1, (1, 1), name=conv_name_base + "2a",
                  use_bias=use_bias)(input_tensor)
    x = BatchNorm(name=bn_name_base + "2a", train_bn=train_bn)(x)
    x = KL.Activation("relu")(x)

    x = KL.Conv2D(nb_filter2, (kernel_size, kernel_size), padding="same",
                  name=conv_name_base + "2b", use_bias=use_bias)(x)
    x = BatchNorm(name=bn_name_base + "2b", train_bn=train_bn)(x)
    x = KL.Activation("relu")(x)

    x = KL.Conv2D(nb_filter3, (1, 1), name=conv_name_base + "2c",
                  use_bias=use_bias)(x)
    x = BatchNorm(name=bn_name_base + "2c", train_bn=train_bn)(x)

    x = KL.Add()([x, input_tensor])
    return KL.Activation("relu", name="res" + str(stage) + block + "_out")(x)


def conv_block(input_tensor, kernel_size, filters, stage, block,
               strides=(2, 2), use_bias=True, train_bn=True):
    """ResNet bottleneck block with a 1x1 conv on the shortcut.

    The first 1x1 conv and the shortcut conv have ``strides`` (Matterport
    and the original Caffe ResNet stride in the 1x1, not in the 3x3).

    Args:
        input_tensor: [B, h, w, c].
        kernel_size, filters, stage, block, use_bias, train_bn: see
            identity_block.
        strides: stride of the block (stage 2 uses (1, 1)).

    Returns:
        [B, h / sy, w / sx, f3], output of layer ``res{stage}{block}_out``.
    """
    nb_filter1, nb_filter2, nb_filter3 = filters
    conv_name_base = "res" + str(stage) + block + "_branch"
    bn_name_base = "bn" + str(stage) + block + "_branch"

    x = KL.Conv2D(nb_filter1, (1, 1), strides=strides,
                  name=conv_name_base + "2a", use_bias=use_bias)(input_tensor)
    x = BatchNorm(name=bn_name_base + "2a", train_bn=train_bn)(x)
    x = KL.Activation("relu")(x)

    x = KL.Conv2D(nb_filter2, (kernel_size, kernel_size), padding="same",
                  name=conv_name_base + "2b", use_bias=use_bias)(x)
    x = BatchNorm(name=bn_name_base + "2b", train_bn=train_bn)(x)
    x = KL.Activation("relu")(x)

    # Layers are created in Keras 2's topological order of Matterport's file
    # (2c conv, shortcut conv, 2c bn, shortcut bn).
    conv2c = KL.Conv2D(nb_filter3, (1, 1), name=conv_name_base + "2c",
                       use_bias=use_bias)
    conv1 = KL.Conv2D(nb_filter3, (1, 1), strides=strides,
                      name=conv_name_base + "1", use_bias=use_bias)
    x = conv2c(x)
    shortcut = conv1(input_tensor)
    x = BatchNorm(name=bn_name_base + "2c", train_bn=train_bn)(x)
    shortcut = BatchNorm(name=bn_name_base + "1", train_bn=train_bn)(shortcut)

    x = KL.Add()([x, shortcut])
    return KL.Activation("relu", name="res" + str(stage) + block + "_out")(x)


def resnet_graph(input_image, architecture, stage5=False, train_bn=True):
    """ResNet-50 or ResNet-101 graph.

    Args:
        input_image: [B, H, W, C] mean-subtracted image tensor.
        architecture: "resnet50" or "resnet101".
        stage5: build stage 5 (else C5 is None).
        train_bn: False freezes every BatchNorm (see BatchNorm).

    Returns:
        [C1, C2, C3, C4, C5] feature maps (shapes in the module docstring).
    """
    if architecture not in _STAGE4_IDENTITY_BLOCKS:
        raise ValueError("resnet_graph: architecture must be one of {}, got "
                         "{!r}".format(sorted(_STAGE4_IDENTITY_BLOCKS),
                                       architecture))
    # Stage 1 (stem)
    x = KL.ZeroPadding2D((3, 3))(input_image)
    x = KL.Conv2D(64, (7, 7), strides=(2, 2), name="conv1", use_bias=True)(x)
    x = BatchNorm(name="bn_conv1", train_bn=train_bn)(x)
    x = KL.Activation("relu")(x)
    C1 = x = KL.MaxPooling2D((3, 3), strides=(2, 2), padding="same")(x)
    # Stage 2
    x = conv_block(x, 3, [64, 64, 256], stage=2, block="a", strides=(1, 1),
                   train_bn=train_bn)
    x = identity_block(x, 3, [64, 64, 256], stage=2, block="b", train_bn=train_bn)
    C2 = x = identity_block(x, 3, [64, 64, 256], stage=2, block="c",
                            train_bn=train_bn)
    # Stage 3
    x = conv_block(x, 3, [128, 128, 512], stage=3, block="a", train_bn=train_bn)
    for block in "bcd":
        x = identity_block(x, 3, [128, 128, 512], stage=3, block=block,
                           train_bn=train_bn)
    C3 = x
    # Stage 4: blocks 'b', 'c', ... ('w' is the last of ResNet-101)
    x = conv_block(x, 3, [256, 256, 1024], stage=4, block="a", train_bn=train_bn)
    for i in range(_STAGE4_IDENTITY_BLOCKS[architecture]):
        x = identity_block(x, 3, [256, 256, 1024], stage=4, block=chr(98 + i),
                           train_bn=train_bn)
    C4 = x
    # Stage 5
    if stage5:
        x = conv_block(x, 3, [512, 512, 2048], stage=5, block="a",
                       train_bn=train_bn)
        x = identity_block(x, 3, [512, 512, 2048], stage=5, block="b",
                           train_bn=train_bn)
        C5 = identity_block(x, 3, [512, 512, 2048], stage=5, block="c",
                            train_bn=train_bn)
    else:
        C5 = None
    return [C1, C2, C3, C4, C5]


def fpn_graph(C2, C3, C4, C5, pyramid_size=256):
    """Feature pyramid: top-down pathway with lateral 1x1 convs (FPN sec. 3).

    Args:
        C2..C5: backbone maps at strides 4, 8, 16, 32 ([B, h_i, w_i, c_i]).
        pyramid_size: channels of every pyramid level (TOP_DOWN_PYRAMID_SIZE).

    Returns:
        [P2, P3, P4, P5, P6], P_i [B, H / 2**i, W / 2**i, pyramid_size].
        P6 (stride 64) is a 1x1 max-pool with stride 2 of P5 and only feeds
        the RPN.
    """
    P5 = KL.Conv2D(pyramid_size, (1, 1), name="fpn_c5p5")(C5)
    P4 = KL.Add(name="fpn_p4add")([
        KL.UpSampling2D(size=(2, 2), name="fpn_p5upsampled")(P5),
        KL.Conv2D(pyramid_size, (1, 1), name="fpn_c4p4")(C4)])
    P3 = KL.Add(name="fpn_p3add")([
        KL.UpSampling2D(size=(2, 2), name="fpn_p4upsampled")(P4),
        KL.Conv2D(pyramid_size, (1, 1), name="fpn_c3p3")(C3)])
    P2 = KL.Add(name="fpn_p2add")([
        KL.UpSampling2D(size=(2, 2), name="fpn_p3upsampled")(P3),
        KL.Conv2D(pyramid_size, (1, 1), name="fpn_c2p2")(C2)])
    # 3x3 convs on every merged map reduce the aliasing of upsampling.
    # Created in Matterport's order (P5 before P2) so layer lists match.
    conv_p5 = KL.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p5")
    P2 = KL.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p2")(P2)
    P3 = KL.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p3")(P3)
    P4 = KL.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p4")(P4)
    P5 = conv_p5(P5)
    P6 = KL.MaxPooling2D(pool_size=(1, 1), strides=2, name="fpn_p6")(P5)
    return [P2, P3, P4, P5, P6]


def backbone_graph(input_image, backbone, train_bn=True, pyramid_size=256):
    """Backbone + FPN for a named or user-supplied backbone.

    Args:
        input_image: [B, H, W, C] image tensor.
        backbone: "resnet50", "resnet101", or a callable
            ``f(input_image, train_bn)`` returning [C2, C3, C4, C5] (or
            [C1, C2, C3, C4, C5]).
        train_bn: False freezes BatchNorm layers.
        pyramid_size: TOP_DOWN_PYRAMID_SIZE.

    Returns:
        [P2, P3, P4, P5, P6] (see fpn_graph).
    """
    if callable(backbone):
        feats = list(backbone(input_image, train_bn=train_bn))
        if len(feats) == 5:
            feats = feats[1:]
        if len(feats) != 4:
            raise ValueError(
                "BACKBONE callable {!r} must return [C2, C3, C4, C5] or "
                "[C1, C2, C3, C4, C5]; got {} tensors".format(backbone, len(feats)))
        C2, C3, C4, C5 = feats
    else:
        _, C2, C3, C4, C5 = resnet_graph(input_image, backbone, stage5=True,
                                         train_bn=train_bn)
    return fpn_graph(C2, C3, C4, C5, pyramid_size=pyramid_size)
