"""HRNet weights: official COCO-pose checkpoints and timm state dicts load into the timm backbone.

The official side is a real network, ``OfficialPoseHRNet`` below, written for this test from the
structure of ``PoseHighResolutionNet`` in the official HRNet pose code (lib/models/pose_hrnet.py,
configs experiments/coco/hrnet/w32_* and w48_*: stem conv1/bn1/conv2/bn2, layer1 of 4 Bottlenecks,
transition1-3, stage2/3/4 of 1/4/3 HighResolutionModules with 4 BasicBlocks a branch, stage4's last
module fusing into branch 0 only, a 1x1 final_layer of 17 joint heatmaps). Its parameter names come
from its own module tree, not from timm's or from the loader's renaming, so a wrong mapping or a
layout difference shows up as a refused file, a wrong count, or different features. It is built at
width 18 (timm ``hrnet_w18``: the same module and block counts as the official W32 / W48 configs,
fewer channels); timm's ``hrnet_w18_small*`` have other block counts and no official pose config.
"""

from __future__ import annotations

import logging

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from kinediff.heads import HRNetMeshHead, load_backbone_weights, read_state_dict

WIDTH = 18
BACKBONE = "hrnet_w18"


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                               nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class Basic(nn.Module):
    """Two 3x3 conv + BN, identity shortcut (the official BasicBlock; channels unchanged)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
        return (y + x).relu()


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4 channels) + shortcut, projected by ``downsample`` when given."""

    def __init__(self, cin: int, planes: int, project: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, planes * 4, 1, bias=False),
                                         nn.BatchNorm2d(planes * 4)) if project else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn1(self.conv1(x)).relu()
        y = self.bn2(self.conv2(y)).relu()
        y = self.bn3(self.conv3(y))
        return (y + (x if self.downsample is None else self.downsample(x))).relu()


class Module(nn.Module):
    """One HighResolutionModule: ``branches`` (4 Basic blocks each) and ``fuse_layers[i][j]``
    bringing branch j to branch i (None for j == i; 1x1 conv + BN + nearest up-sampling for j > i;
    i - j stride-2 3x3 convs for j < i, the last one to branch i's channels without ReLU). With
    ``all_outputs=False`` only output 0 is fused (official stage4's last module)."""

    def __init__(self, channels: list[int], all_outputs: bool = True) -> None:
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(nn.Sequential(*[Basic(c) for _ in range(4)]) for c in channels)
        self.fuse_layers = nn.ModuleList()
        for i in range(n if all_outputs else 1):
            row = nn.ModuleList()
            for j in range(n):
                if j == i:
                    row.append(None)
                elif j > i:
                    row.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, bias=False),
                                             nn.BatchNorm2d(channels[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                else:
                    steps = [_conv_bn(channels[j], channels[j], 3, 2, True) for _ in range(i - j - 1)]
                    row.append(nn.Sequential(*steps, _conv_bn(channels[j], channels[i], 3, 2, False)))
            self.fuse_layers.append(row)
        self.branch_outputs: list[torch.Tensor] = []

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        self.branch_outputs = xs
        return [torch.stack([x if f is None else f(x) for f, x in zip(row, xs)]).sum(0).relu()
                for row in self.fuse_layers]


class OfficialPoseHRNet(nn.Module):
    """The official pose HRNet's layout at width ``w``: (B, 3, H, W) -> (B, joints, H/4, W/4)."""

    def __init__(self, w: int = WIDTH, joints: int = 17) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.layer1 = nn.Sequential(Bottleneck(64, 64, True), *[Bottleneck(256, 64, False) for _ in range(3)])
        widths = [[w, 2 * w], [w, 2 * w, 4 * w], [w, 2 * w, 4 * w, 8 * w]]
        before = [256]
        for t, (cur, modules) in enumerate(zip(widths, (1, 4, 3)), start=1):
            transition = nn.ModuleList()
            for i, c in enumerate(cur):
                if i < len(before):
                    transition.append(None if c == before[i] else _conv_bn(before[i], c, 3, 1, True))
                else:  # a new, coarser branch from the coarsest previous one
                    transition.append(nn.Sequential(_conv_bn(before[-1], c, 3, 2, True)))
            setattr(self, f"transition{t}", transition)
            last = t == 3
            setattr(self, f"stage{t + 1}", nn.Sequential(
                *[Module(cur, all_outputs=not (last and m == modules - 1)) for m in range(modules)]))
            before = cur
        self.final_layer = nn.Conv2d(w, joints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.bn2(self.conv2(self.bn1(self.conv1(x)).relu())).relu())
        ys = [x]
        for t in (1, 2, 3):
            transition = getattr(self, f"transition{t}")
            xs = [ys[i] if f is None else f(ys[-1]) for i, f in enumerate(transition)]
            for module in getattr(self, f"stage{t + 1}"):
                xs = module(xs)
            ys = xs
        self.stage4_output = ys[0]
        return self.final_layer(ys[0])


def _randomise(model: nn.Module, seed: int) -> nn.Module:
    """Seeded random weights everywhere, BatchNorm statistics and affine included, eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (1.0 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
            elif isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=gen))
                module.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                module.num_batches_tracked.fill_(7)
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread while these tests run (restored after): on a busy 2-core machine the
    ~1,800 small ops of an HRNet forward pass wait on each other's threads, ten times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def official(image):
    """The seeded official-layout net, its state dict, and on ``image`` its stage4 output and its
    last module's branch outputs (strides 4, 8, 16, 32)."""
    torch.manual_seed(0)
    net = _randomise(OfficialPoseHRNet(), seed=1)
    with torch.no_grad():
        net(image)
    return net, net.state_dict(), net.stage4_output, net.stage4[-1].branch_outputs


@pytest.fixture(scope="module")
def timm_source(image):
    """A seeded timm classification HRNet (the form timm ships), its state dict and its four branch
    outputs on ``image``."""
    torch.manual_seed(4)
    net = _randomise(timm.create_model(BACKBONE), seed=5)
    with torch.no_grad():
        stem = net.act2(net.bn2(net.conv2(net.act1(net.bn1(net.conv1(image))))))
        branches = net.stages(stem)
    return net.state_dict(), branches


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    assert (a - b).abs().max() <= 1e-5 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("layout", ["plain", "plain-legacy-format", "dataparallel-checkpoint"])
def test_official_pose_checkpoint_gives_the_official_features(official, image, tmp_path, layout,
                                                             caplog):
    _, state, stage4_output, branch_outputs = official
    path = tmp_path / "pose_hrnet_w18_256x192.pth"
    if layout == "dataparallel-checkpoint":  # checkpoint.pth as the official training writes it
        torch.save({"epoch": 3, "model": "pose_hrnet", "perf": 0.7,
                    "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    else:
        torch.save(state, path, _use_new_zipfile_serialization=layout == "plain")
    torch.manual_seed(3)
    with caplog.at_level(logging.INFO, logger="kinediff.heads.hrnet_weights"):
        head = HRNetMeshHead(BACKBONE, pretrained=path).eval()
    report = head.pretrained_report
    assert report is not None and report.path == path
    assert f"{path}: loaded {len(state) - 2} backbone tensors" in caplog.text

    own = head.backbone.state_dict()
    prefix = "module." if layout == "dataparallel-checkpoint" else ""
    assert report.unused == (f"{prefix}final_layer.weight", f"{prefix}final_layer.bias")
    assert report.num_loaded == len(state) - 2
    assert set(report.loaded) == set(state) - {"final_layer.weight", "final_layer.bias"}
    # the official stage4 fuses into its first branch only: timm's other fusion paths are missing
    expected_missing = {k for k in own if k.startswith("stage4.2.fuse_layers.")
                        and not k.startswith("stage4.2.fuse_layers.0.")}
    assert len(expected_missing) > 0 and set(report.missing) == expected_missing
    assert len(report.loaded) + len(report.missing) == len(own)
    # 9 paths (3 sources into each of outputs 1..3), each a BN weight and bias
    assert set(report.zeroed) <= expected_missing and len(report.zeroed) == 2 * 9

    with torch.no_grad():
        feats = head.backbone(image)
    _close(feats[0], stage4_output)
    # stride 8/16/32: the last module's pretrained branch outputs, their absent fusion paths zeroed
    for got, want in zip(feats[1:], branch_outputs[1:], strict=True):
        _close(got, want)


def test_without_neutral_fuse_the_missing_paths_stay_random(official, image, tmp_path):
    _, state, stage4_output, branch_outputs = official
    path = tmp_path / "pose.pth"
    torch.save(state, path)
    torch.manual_seed(3)
    backbone = HRNetMeshHead(BACKBONE).backbone.eval()
    report = load_backbone_weights(backbone, path, neutral_fuse=False)
    assert report.zeroed == () and len(report.missing) > 0
    with torch.no_grad():
        feats = backbone(image)
    _close(feats[0], stage4_output)
    assert (feats[1] - branch_outputs[1]).abs().max() > 1e-2


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_timm_state_dict_loads(timm_source, image, tmp_path, suffix):
    state, branches = timm_source
    path = tmp_path / f"{BACKBONE}{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    torch.manual_seed(6)
    head = HRNetMeshHead(BACKBONE, pretrained=path).eval()
    report = head.pretrained_report
    own = head.backbone.state_dict()
    assert report.missing == () and report.zeroed == ()
    assert report.num_loaded == len(own) and set(report.loaded) == set(own)
    assert {k.split(".")[0] for k in report.unused} == {"incre_modules", "downsamp_modules",
                                                        "final_layer", "classifier"}
    assert len(report.unused) == len(state) - len(own)
    with torch.no_grad():
        feats = head.backbone(image)
    for got, want in zip(feats, branches, strict=True):
        _close(got, want)


def test_a_saved_head_needs_not_its_weights_file(timm_source, image, tmp_path):
    path = tmp_path / f"{BACKBONE}.pth"
    torch.save(timm_source[0], path)
    head = HRNetMeshHead(BACKBONE, num_points=18, num_vertices=20, heatmap_size=16,
                         pretrained=path).eval()
    folder = head.save_pretrained(tmp_path / "head")
    path.unlink()  # the folder is loaded where the backbone's file is not
    again = HRNetMeshHead.from_pretrained(folder)
    assert again.config == head.config.replace(pretrained=None) and head.config.pretrained == str(path)
    with torch.no_grad():
        assert torch.equal(again(image)["mesh2d"], head(image)["mesh2d"])


def test_mismatched_files_are_refused(official, tmp_path):
    state = dict(official[1])
    state["stage3.1.branches.2.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)  # earlier in file order
    state["stage4.0.branches.0.0.bn1.weight"] = torch.zeros(5)
    path = tmp_path / "pose_hrnet_wrong.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"pose_hrnet_wrong\.pth: 'stage3\.1\.branches\.2\.0\.conv1"
                                         r"\.weight' has shape \(3, 3, 3, 3\)"):
        HRNetMeshHead(BACKBONE, pretrained=path)

    nothing = tmp_path / "resnet_head.pth"
    torch.save({"fc.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)}, nothing)
    with pytest.raises(ValueError, match=r"resnet_head\.pth: no tensor matches the .* \(first key "
                                         r"'fc\.weight'\)"):
        HRNetMeshHead(BACKBONE, pretrained=nothing)

    other_width = tmp_path / "w32_into_w18.pth"  # the first tensor whose shape depends on the width
    torch.save({"conv1.weight": torch.zeros(64, 3, 3, 3),
                "transition1.0.0.weight": torch.zeros(32, 256, 3, 3)}, other_width)
    with pytest.raises(ValueError, match=r"w32_into_w18\.pth: 'transition1\.0\.0\.weight'"):
        HRNetMeshHead(BACKBONE, pretrained=other_width)


def test_non_dict_and_unsafe_files_are_refused(tmp_path):
    backbone = HRNetMeshHead("hrnet_w18_small").backbone
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match=r"tensor\.pth: expected a state dict, got Tensor"):
        load_backbone_weights(backbone, tensor)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], listed)
    with pytest.raises(ValueError, match=r"list\.pth: expected a state dict, got list"):
        read_state_dict(listed)
    whole = tmp_path / "whole_module.pth"  # a pickled module: refused by weights_only=True
    torch.save(nn.Linear(2, 2), whole)
    with pytest.raises(ValueError, match=r"whole_module\.pth: not a state dict torch\.load"):
        load_backbone_weights(backbone, whole)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors header")
    with pytest.raises(ValueError, match=r"broken\.safetensors: not a readable safetensors file"):
        load_backbone_weights(backbone, broken)
    with pytest.raises(FileNotFoundError, match="no HRNet weights"):
        load_backbone_weights(backbone, tmp_path / "absent.pth")
