"""Image network families: published sizes, shapes on digits and CIFAR, options, errors."""

from __future__ import annotations

import re

import pytest
import torch
from project import ROOT
from torch import nn

from ban.core.errors import ConfigError
from ban.nets import build_model, count_parameters, get_architecture
from ban.nets.densenet import DenseLayer

CIFAR = {"in_channels": 3, "num_classes": 10}


def parameters(name: str, **options: object) -> int:
    return count_parameters(build_model(name, options, **CIFAR))


@pytest.mark.parametrize(
    ("name", "options", "published", "tolerance"),
    [
        ("resnet", {"depth": 20}, 0.27e6, 0.01),
        ("resnet", {"depth": 56}, 0.853e6, 0.001),
        ("wrn", {"depth": 28, "widen": 10}, 36.48e6, 0.001),
        ("wrn", {"depth": 28, "widen": 1}, 0.37e6, 0.01),
        ("densenet", {"depth": 100, "growth": 12}, 0.769e6, 0.001),
    ],
)
def test_published_parameter_counts(name: str, options: dict, published: float, tolerance: float) -> None:
    assert parameters(name, **options) == pytest.approx(published, rel=tolerance)


# Every exact count the documentation states for a CIFAR-10 network (10 classes, 3 channels), by page.
DOCUMENTED_COUNTS = [
    ("resnet", {"depth": 20}, 269_722, "docs/speed.md"),
    ("resnet", {"depth": 56}, 853_018, "docs/architectures.md"),
    ("resnet", {"depth": 56}, 853_018, "docs/speed.md"),
    ("wrn", {"depth": 16, "widen": 4}, 2_748_890, "docs/speed.md"),
    ("wrn", {"depth": 28, "widen": 10}, 36_479_194, "docs/architectures.md"),
    ("wrn", {"depth": 28, "widen": 1}, 369_498, "docs/architectures.md"),
    ("densenet", {"depth": 100, "growth": 12}, 769_162, "docs/architectures.md"),
    ("densenet", {"depth": 100, "growth": 12}, 769_162, "docs/speed.md"),
    ("densenet", {"growth": 60, "layers": [14, 14, 15]}, 15_547_810, "docs/architectures.md"),
]


@pytest.mark.parametrize(("name", "options", "count", "page"), DOCUMENTED_COUNTS)
def test_the_counts_the_documentation_states_are_exact(name: str, options: dict, count: int,
                                                        page: str) -> None:
    with torch.device("meta"):
        assert parameters(name, **options) == count
    assert f"{count:,}" in (ROOT / page).read_text()


SMALL = [
    ("resnet", {"depth": 8, "width": 4}),
    ("preact_resnet", {"depth": 8, "width": 4}),
    ("wrn", {"depth": 10, "widen": 0.5}),
    ("wrn", {"depth": 10, "widen": 0.5, "dropout": 0.3}),
    ("densenet", {"depth": 10, "growth": 4}),
    ("densenet", {"growth": 4, "layers": [1, 2, 1, 1]}),
]


@pytest.mark.parametrize(("name", "options"), SMALL)
@pytest.mark.parametrize(("shape", "classes"), [((1, 8, 8), 10), ((3, 32, 32), 100), ((3, 9, 11), 7)])
def test_forward_shape(name: str, options: dict, shape: tuple[int, int, int], classes: int) -> None:
    model = build_model(name, options, in_channels=shape[0], num_classes=classes)
    logits = model(torch.randn(2, *shape))
    assert logits.shape == (2, classes)
    assert torch.isfinite(logits).all()


def test_backward_reaches_every_parameter() -> None:
    model = build_model("wrn", {"depth": 10, "widen": 0.5}, in_channels=1, num_classes=3)
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def first_leaf_on_block_input(model: nn.Module) -> nn.Module:
    """The first leaf module that runs inside the first residual block."""
    block = model.body[0][0]
    calls: list[nn.Module] = []
    hooks = [
        m.register_forward_pre_hook(lambda module, _: calls.append(module))
        for m in block.modules()
        if not list(m.children())
    ]
    model(torch.randn(1, 3, 8, 8))
    for hook in hooks:
        hook.remove()
    return calls[0]


def test_preact_block_starts_with_batchnorm_unlike_resnet() -> None:
    options = {"depth": 8, "width": 4}
    original = first_leaf_on_block_input(build_model("resnet", options, **CIFAR))
    preact = first_leaf_on_block_input(build_model("preact_resnet", options, **CIFAR))
    assert isinstance(original, nn.Conv2d)
    assert isinstance(preact, nn.BatchNorm2d)


def test_width_sets_first_stage_channels() -> None:
    model = build_model("preact_resnet", {"depth": 14, "width": 8}, **CIFAR)
    convs = [m for m in model.body.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert (convs[0].out_channels, convs[-1].out_channels) == (8, 32)
    assert len(convs) == 12  # 14 = stem + 12 block convs + classifier


def test_resnet_shortcut_is_parameter_free() -> None:
    model = build_model("resnet", {"depth": 8, "width": 4}, **CIFAR)
    assert not any(m.kernel_size == (1, 1) for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(("widen", "widths"), [(0.5, [8, 16, 32]), (1, [16, 32, 64]), (2, [32, 64, 128])])
def test_wrn_group_widths(widen: float, widths: list[int]) -> None:
    model = build_model("wrn", {"depth": 10, "widen": widen}, **CIFAR)
    assert [stage[0].conv1.out_channels for stage in model.body] == widths
    assert model.stem.out_channels == 16


def test_wrn_dropout_only_when_positive() -> None:
    plain = build_model("wrn", {"depth": 10, "widen": 0.5}, **CIFAR)
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(plain.train()(x), plain(x))
    dropped = build_model("wrn", {"depth": 10, "widen": 0.5, "dropout": 0.3}, **CIFAR)
    rates = [m.p for m in dropped.modules() if isinstance(m, nn.Dropout)]
    assert rates == [0.3, 0.3, 0.3]
    dropped.eval()
    assert torch.equal(dropped(x), dropped(x))
    dropped.train()
    assert not torch.equal(dropped(x), dropped(x))


def test_densenet_layers_override_depth() -> None:
    explicit = build_model("densenet", {"depth": 100, "growth": 4, "layers": [2, 3]}, **CIFAR)
    dense = [m for m in explicit.modules() if isinstance(m, DenseLayer)]
    assert len(dense) == 5
    # stem 8 + 2*4 = 16, compressed to 8, + 3*4 = 20 channels reach the classifier
    assert explicit.head[-1].in_features == 20


def test_densenet_compression_sets_transition_width() -> None:
    model = build_model("densenet", {"growth": 4, "layers": [2, 1], "compression": 0.75}, **CIFAR)
    transition_conv = model.body[2][2]  # body: two dense layers, then BN, ReLU, conv, pool
    assert (transition_conv.in_channels, transition_conv.out_channels) == (16, 12)
    assert model.head[-1].in_features == 12 + 4


def test_init_is_the_standard_cifar_one() -> None:
    model = build_model("resnet", {"depth": 8, "width": 16}, **CIFAR)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in norms)
    conv = model.body[1][0].conv2  # 32 -> 32 channels, fan out 9 * 32
    assert conv.weight.std().item() == pytest.approx((2 / (9 * 32)) ** 0.5, rel=0.1)


@pytest.mark.parametrize(
    ("name", "depth", "form"),
    [("resnet", 21, "6n+2"), ("preact_resnet", 2, "6n+2"), ("wrn", 28.0, "6n+4"), ("densenet", 90, "6n+4")],
)
def test_invalid_depth_names_key_and_form(name: str, depth: object, form: str) -> None:
    with pytest.raises(ConfigError, match=rf"^model\.depth: .*{re.escape(form)}"):
        build_model(name, {"depth": depth}, **CIFAR)


@pytest.mark.parametrize(
    ("name", "options", "key"),
    [
        ("resnet", {"width": 0}, "model.width"),
        ("resnet", {"width": 8.5}, "model.width"),
        ("wrn", {"widen": -1}, "model.widen"),
        ("wrn", {"dropout": 1.0}, "model.dropout"),
        ("densenet", {"layers": []}, "model.layers"),
        ("densenet", {"layers": [3, 0]}, "model.layers"),
        ("densenet", {"compression": 0}, "model.compression"),
        ("densenet", {"growth": 2.5}, "model.growth"),
    ],
)
def test_invalid_options_name_their_key(name: str, options: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        build_model(name, options, **CIFAR)


def test_unknown_option_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^model\.widen: not an option of 'resnet'"):
        build_model("resnet", {"widen": 2}, **CIFAR)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("resnet", {"depth", "width"}),
        ("preact_resnet", {"depth", "width"}),
        ("wrn", {"depth", "widen", "dropout"}),
        ("densenet", {"depth", "growth", "compression", "layers"}),
    ],
)
def test_registered_as_image_with_options(name: str, options: set[str]) -> None:
    architecture = get_architecture(name)
    assert architecture.task == "image"
    assert architecture.option_names() == options


def test_imagenet_resnet_is_torchvisions_own():
    """Same parameters and state-dict keys as torchvision's resnet18 (so checkpoints move between them);
    another channel count replaces only the stem; a depth torchvision does not define is one line."""
    from torchvision.models import resnet18

    with torch.device("meta"):
        ours = build_model("imagenet_resnet", {"depth": 18}, in_channels=3, num_classes=1000)
        theirs = resnet18()
        gray = build_model("imagenet_resnet", {}, in_channels=1, num_classes=10)
    assert count_parameters(ours) == count_parameters(theirs) == 11_689_512
    shapes = [{key: value.shape for key, value in net.state_dict().items()} for net in (ours, theirs)]
    assert shapes[0] == shapes[1]
    assert gray.conv1.in_channels == 1 and gray.fc.out_features == 10
    with pytest.raises(ConfigError, match=r"^model.depth: 20 is not an ImageNet ResNet depth; use one of 18"):
        build_model("imagenet_resnet", {"depth": 20}, in_channels=3, num_classes=10)
