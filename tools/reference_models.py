# Reference model definitions (ResNet-20, VGG-BN, MobileNet) for Fashion-MNIST 1x28x28, shared by the training and parity scripts.
"""Reference model definitions for aciq's trained Fashion-MNIST models.

Imported by tools/train_reference_models.py (training + ONNX export) and by
parity scripts that rebuild a model to compare it with the C++ executor.

All models take a float32 NCHW tensor of shape (N, 1, 28, 28), normalized as
(x / 255 - MEAN) / STD, and return (N, 10) logits.
"""
import torch
import torch.nn as nn

MEAN = 0.2860
STD = 0.3530
INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


def _conv_bn(cin, cout, k, stride=1, groups=1):
    pad = k // 2
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    """CIFAR ResNet basic block; option-B shortcut (1x1 conv + BN) when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """CIFAR-style ResNet-20: 3 stages (16/32/64 channels) x 3 basic blocks, global avg pool, Linear 64->10."""

    def __init__(self, num_classes=NUM_CLASSES, in_channels=1, widths=(16, 32, 64), blocks=3):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_channels, widths[0], 3), nn.ReLU(inplace=True))
        layers = []
        cin = widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(cin, w, stride))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.layers(self.stem(x))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


class VGGBN(nn.Module):
    """VGG-style: conv3x3-BN-ReLU blocks (32,32,M,64,64,M,128,M), flatten, Linear 1152->256->128->10."""

    def __init__(self, num_classes=NUM_CLASSES, in_channels=1, cfg=(32, 32, "M", 64, 64, "M", 128, "M"),
                 hidden=(256, 128), dropout=0.3):
        super().__init__()
        layers = []
        cin = in_channels
        side = INPUT_SHAPE[1]
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                side //= 2
            else:
                layers += _conv_bn(cin, v, 3) + [nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(cin * side * side, hidden[0]), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]), nn.ReLU(inplace=True),
            nn.Linear(hidden[1], num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


class MobileNet(nn.Module):
    """MobileNet-v1 style: conv3x3-BN-ReLU6 stem, depthwise-separable blocks
    (dw3x3-BN-ReLU6, pw1x1-BN-ReLU6), two of them stride 2 (28->14->7), global avg pool, Linear -> 10."""

    # (out_channels, stride) of each depthwise-separable block: 28x28 -> 14x14 -> 7x7
    BLOCKS = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 1))

    def __init__(self, num_classes=NUM_CLASSES, in_channels=1, stem=32, blocks=BLOCKS):
        super().__init__()
        layers = _conv_bn(in_channels, stem, 3) + [nn.ReLU6(inplace=True)]
        cin = stem
        for cout, stride in blocks:
            layers += _conv_bn(cin, cin, 3, stride=stride, groups=cin) + [nn.ReLU6(inplace=True)]
            layers += _conv_bn(cin, cout, 1) + [nn.ReLU6(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.fc(torch.flatten(x, 1))


MODELS = {
    "resnet20": ResNet20,
    "vgg_bn": VGGBN,
    "mobilenet": MobileNet,
}


def build(name):
    """Return a freshly initialized model by name (one of MODELS)."""
    try:
        return MODELS[name]()
    except KeyError:
        raise ValueError("unknown model %r (known: %s)" % (name, ", ".join(MODELS))) from None


def param_count(model):
    return sum(p.numel() for p in model.parameters())
