"""The model zoo: torchvision-exact reference architectures, small demo models, and the state_dict matcher."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from embodied_tui.analysis import zoo
from embodied_tui.analysis.zoo import BUILDERS, Match, identify_state_dict, match_state_dict

# torchvision's published parameter counts (the "params" column of its model docs).
PUBLISHED_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "mobilenet_v2": 3_504_872,
    "mobilenet_v3_small": 2_542_856,
    "mobilenet_v3_large": 5_483_032,
    "efficientnet_b0": 5_288_548,
    "vit_b_16": 86_567_656,
    "convnext_tiny": 28_589_128,
    "regnet_y_400mf": 4_344_144,
    "densenet121": 7_978_856,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
}

# Parameter names and shapes as they appear in torchvision checkpoints (read from torchvision's state_dicts).
KNOWN_KEYS = {
    "resnet18": {"layer2.0.downsample.0.weight": (128, 64, 1, 1), "layer4.1.bn2.running_var": (512,),
                 "fc.weight": (1000, 512)},
    "resnet50": {"conv1.weight": (64, 3, 7, 7), "layer1.0.downsample.0.weight": (256, 64, 1, 1),
                 "layer4.2.conv3.weight": (2048, 512, 1, 1), "fc.weight": (1000, 2048)},
    "resnet101": {"layer3.22.conv2.weight": (256, 256, 3, 3)},
    "mobilenet_v2": {"features.0.0.weight": (32, 3, 3, 3), "features.1.conv.0.0.weight": (32, 1, 3, 3),
                     "features.2.conv.0.0.weight": (96, 16, 1, 1), "features.18.0.weight": (1280, 320, 1, 1),
                     "classifier.1.weight": (1000, 1280)},
    "mobilenet_v3_small": {"features.1.block.1.fc1.weight": (8, 16, 1, 1),
                           "features.4.block.2.fc2.weight": (96, 24, 1, 1), "features.12.0.weight": (576, 96, 1, 1),
                           "classifier.0.weight": (1024, 576), "classifier.3.weight": (1000, 1024)},
    "mobilenet_v3_large": {"features.16.0.weight": (960, 160, 1, 1), "classifier.0.weight": (1280, 960)},
    "efficientnet_b0": {"features.1.0.block.0.0.weight": (32, 1, 3, 3),
                        "features.1.0.block.1.fc1.weight": (8, 32, 1, 1),
                        "features.8.0.weight": (1280, 320, 1, 1), "classifier.1.weight": (1000, 1280)},
    "vit_b_16": {"class_token": (1, 1, 768), "conv_proj.weight": (768, 3, 16, 16),
                 "encoder.pos_embedding": (1, 197, 768),
                 "encoder.layers.encoder_layer_11.self_attention.in_proj_weight": (2304, 768),
                 "encoder.layers.encoder_layer_0.mlp.3.weight": (768, 3072), "encoder.ln.weight": (768,),
                 "heads.head.weight": (1000, 768)},
    "convnext_tiny": {"features.0.0.weight": (96, 3, 4, 4), "features.1.0.layer_scale": (96, 1, 1),
                      "features.1.0.block.0.weight": (96, 1, 7, 7), "features.2.1.weight": (192, 96, 2, 2),
                      "features.7.2.block.5.weight": (768, 3072), "classifier.2.weight": (1000, 768)},
    "regnet_y_400mf": {"stem.0.weight": (32, 3, 3, 3), "trunk_output.block1.block1-0.proj.0.weight": (48, 32, 1, 1),
                       "trunk_output.block2.block2-0.f.se.fc1.weight": (12, 104, 1, 1),
                       "trunk_output.block4.block4-1.f.se.fc1.weight": (110, 440, 1, 1),
                       "fc.weight": (1000, 440)},
    "densenet121": {"features.conv0.weight": (64, 3, 7, 7),
                    "features.denseblock1.denselayer1.conv1.weight": (128, 64, 1, 1),
                    "features.transition3.conv.weight": (512, 1024, 1, 1),
                    "features.denseblock4.denselayer16.conv2.weight": (32, 128, 3, 3),
                    "features.norm5.weight": (1024,), "classifier.weight": (1000, 1024)},
    "vgg16": {"features.28.weight": (512, 512, 3, 3), "classifier.0.weight": (4096, 25088),
              "classifier.6.weight": (1000, 4096)},
}

# Number of named parameters in torchvision's models (the "layers" count of published parameter listings).
NAMED_PARAMETERS = {"mobilenet_v2": 158, "mobilenet_v3_small": 142, "vit_b_16": 152, "convnext_tiny": 182,
                    "regnet_y_400mf": 225}

REFERENCE = [name for name, b in BUILDERS.items() if b.reference]
SMALL = [name for name, b in BUILDERS.items() if not b.reference and b.source is None]  # our demo models


def meta_model(name: str, **overrides) -> nn.Module:
    with torch.device("meta"):
        return BUILDERS[name].build(**overrides)


def shapes_of(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_every_reference_architecture_is_listed_with_its_published_count():
    assert sorted(REFERENCE) == sorted(PUBLISHED_PARAMS)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_reference_parameter_count_equals_torchvision(name):
    model = meta_model(name)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", sorted(KNOWN_KEYS))
def test_reference_keys_and_shapes_are_torchvision_s(name):
    shapes = shapes_of(meta_model(name))
    for key, shape in KNOWN_KEYS[name].items():
        assert shapes.get(key) == shape, key


@pytest.mark.parametrize("name", sorted(NAMED_PARAMETERS))
def test_reference_named_parameter_count(name):
    assert len(list(meta_model(name).named_parameters())) == NAMED_PARAMETERS[name]


def test_module_level_builders_match_the_registry():
    with torch.device("meta"):
        direct = zoo.resnet50(num_classes=7)
        vit = zoo.vit(patch=16, dim=768, depth=12, heads=12, mlp_dim=3072, image_size=224)
    assert shapes_of(direct)["fc.weight"] == (7, 2048)
    assert shapes_of(vit) == shapes_of(meta_model("vit_b_16"))


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_forward_on_meta_gives_logits(name):
    model = meta_model(name)
    (shape,) = BUILDERS[name].input_shapes
    out = model(torch.empty(shape, device="meta"))
    assert tuple(out.shape) == (1, 1000)


# torchvision's published "GFLOPS" (multiply-accumulates, in billions, at 224x224), two decimals. Counted here with
# torch's own FlopCounterMode (2 FLOPs per MAC): a check that strides and widths sit where torchvision puts them.
PUBLISHED_GMACS = {
    "resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80, "mobilenet_v2": 0.30,
    "mobilenet_v3_small": 0.06, "mobilenet_v3_large": 0.22, "efficientnet_b0": 0.39, "vit_b_16": 17.56,
    "convnext_tiny": 4.46, "regnet_y_400mf": 0.40, "densenet121": 2.83, "vgg16": 15.47,
    "vgg19": 19.63,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_reference_compute_equals_torchvision_published(name):
    from torch.utils.flop_counter import FlopCounterMode

    model = meta_model(name)
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, 224, 224, device="meta"))
    assert round(counter.get_total_flops() / 2e9, 2) == PUBLISHED_GMACS[name]


SMALL_OUTPUTS = {
    "resnet_tiny": (1, 10),
    "mobilenet_tiny": (1, 10),
    "small_vit": (1, 10),
    "small_vit_sdpa": (1, 10),
    "lstm_policy": (1, 16, 8),
    "gru_policy": (1, 16, 8),
    "mlp_policy": (1, 8),
    "yolo_style_detector": (1, 4 * 16 + 80, 40 * 40 + 20 * 20 + 10 * 10),
    "unet_small": (1, 21, 128, 128),
}


def test_every_small_model_has_an_expected_output():
    assert sorted(SMALL) == sorted([*SMALL_OUTPUTS, "yolo_style_detector_postprocess"])


@pytest.mark.parametrize("name", sorted(SMALL_OUTPUTS))
def test_small_model_runs_on_cpu(name):
    builder = BUILDERS[name]
    model = builder.build()
    assert not model.training
    with torch.no_grad():
        out = model(*builder.example_inputs())
    assert tuple(out.shape) == SMALL_OUTPUTS[name]
    assert torch.isfinite(out).all()


def test_builders_take_num_classes_and_other_sizes():
    with torch.no_grad():
        assert tuple(BUILDERS["resnet_tiny"].build(num_classes=3)(torch.randn(2, 3, 64, 64)).shape) == (2, 3)
        assert tuple(zoo.lstm_policy(obs_dim=5, act_dim=2)(torch.randn(1, 7, 5)).shape) == (1, 7, 2)
        assert tuple(zoo.unet_small(num_classes=1, upsample="bilinear")(torch.randn(1, 3, 64, 64)).shape) \
            == (1, 1, 64, 64)
        assert tuple(zoo.yolo_style_detector(num_classes=3)(torch.randn(1, 3, 256, 256)).shape) \
            == (1, 64 + 3, 32 * 32 + 16 * 16 + 8 * 8)


class CallRecorder(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.called = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.called.add(func)
        return func(*args, **(kwargs or {}))


def test_sdpa_vit_calls_sdpa_and_computes_what_multihead_attention_does():
    mha, sdpa = BUILDERS["small_vit"].build(), BUILDERS["small_vit_sdpa"].build()
    assert any(isinstance(m, nn.MultiheadAttention) for m in mha.modules())
    assert not any(isinstance(m, nn.MultiheadAttention) for m in sdpa.modules())
    sdpa.load_state_dict(mha.state_dict(), strict=True)  # same parameter names and shapes
    (x,) = BUILDERS["small_vit"].example_inputs()
    recorder = CallRecorder()
    with torch.no_grad():
        expected = mha(x)
        with recorder:
            got = sdpa(x)
    assert torch.nn.functional.scaled_dot_product_attention in recorder.called
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert expected.abs().sum() > 0


def test_postprocess_keeps_exactly_the_anchors_over_the_threshold():
    plain = BUILDERS["yolo_style_detector"].build()
    (x,) = BUILDERS["yolo_style_detector"].example_inputs()
    with torch.no_grad():
        raw = plain(x)
    best, label = raw[:, 64:, :].sigmoid().max(1)
    threshold = float(best.median())  # about half the anchors pass
    post = BUILDERS["yolo_style_detector_postprocess"].build(conf_threshold=threshold)
    post.load_state_dict(plain.state_dict(), strict=True)
    with torch.no_grad():
        dets = post(x)
    kept = best[0] > threshold
    assert dets.shape == (int(kept.sum()), 7)
    assert 0 < dets.shape[0] < raw.shape[-1]
    assert (dets[:, 0] == 0).all()
    torch.testing.assert_close(dets[:, 5], best[0][kept])
    assert torch.equal(dets[:, 6].long(), label[0][kept])
    assert (dets[:, 3] >= dets[:, 1]).all() and (dets[:, 4] >= dets[:, 2]).all()


def test_postprocess_is_data_dependent():
    post = meta_model("yolo_style_detector_postprocess")
    meta_plain = meta_model("yolo_style_detector")
    assert tuple(meta_plain(torch.empty(1, 3, 320, 320, device="meta")).shape) == (1, 144, 2100)
    with pytest.raises(Exception, match="nonzero"):  # no shape without the data
        post(torch.empty(1, 3, 320, 320, device="meta"))


def test_registry_entries_are_consistent():
    for name, builder in BUILDERS.items():
        assert builder.name == name
        assert all(isinstance(d, int) for shape in builder.input_shapes for d in shape)
        sig = zoo.signature(name)
        for key in builder.class_keys:
            assert sig[key][0] == builder.num_classes, (name, key)
        if builder.same_weights_as:
            assert sig == zoo.signature(builder.same_weights_as)


# ------------------------------------------------------------------------------------------------ matcher
MATCHABLE = [name for name, b in BUILDERS.items() if b.same_weights_as is None]


@pytest.mark.parametrize("name", MATCHABLE)
def test_matcher_recognises_each_architecture(name):
    shapes = shapes_of(meta_model(name))
    assert match_state_dict(shapes) == name
    assert identify_state_dict(shapes) == Match(name, BUILDERS[name].num_classes)


@pytest.mark.parametrize("name", ["resnet50", "vit_b_16", "mobilenet_v3_large", "densenet121", "resnet_tiny",
                                  "yolo_style_detector", "unet_small"])
def test_matcher_reads_the_class_count(name):
    shapes = shapes_of(meta_model(name, num_classes=7))
    assert identify_state_dict(shapes) == Match(name, 7)


def test_matcher_rejects_perturbed_checkpoints():
    shapes = shapes_of(meta_model("resnet50"))
    wider = dict(shapes, **{"layer3.0.conv2.weight": (256, 256, 3, 5)})
    missing = {k: v for k, v in shapes.items() if k != "layer4.2.bn3.running_mean"}
    extra = dict(shapes, **{"fc2.weight": (10, 2048)})
    wrong_rank = dict(shapes, **{"fc.weight": (1000, 2048, 1)})
    split_head = dict(shapes, **{"fc.weight": (10, 2048), "fc.bias": (11,)})
    head_input = dict(shapes, **{"fc.weight": (1000, 1024)})
    for bad in (wider, missing, extra, wrong_rank, split_head, head_input):
        assert match_state_dict(bad) is None
    assert match_state_dict({}) is None
    assert match_state_dict(nn.Linear(3, 4).state_dict()) is None
    assert match_state_dict(shapes_of(meta_model("vit_b_16")) | {"encoder.pos_embedding": (1, 257, 768)}) is None


def test_matcher_accepts_tensors_old_checkpoints_and_data_parallel_prefixes(tmp_path):
    model = BUILDERS["resnet_tiny"].build(num_classes=4)
    path = tmp_path / "resnet_tiny.pt"
    torch.save(model.state_dict(), path)
    state = torch.load(path, weights_only=True)
    assert identify_state_dict(state) == Match("resnet_tiny", 4)
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert match_state_dict(old) == "resnet_tiny"
    assert match_state_dict({f"module.{k}": v for k, v in state.items()}) == "resnet_tiny"
    # the matched builder loads the checkpoint strictly
    BUILDERS["resnet_tiny"].build(num_classes=4).load_state_dict(state, strict=True)


def test_variants_resolve_to_their_base_entry():
    assert match_state_dict(shapes_of(meta_model("small_vit_sdpa"))) == "small_vit"
    assert match_state_dict(shapes_of(meta_model("yolo_style_detector_postprocess"))) == "yolo_style_detector"


def test_importing_the_registry_does_not_import_torch():
    code = ("import sys; from embodied_tui.analysis import zoo; "
            "assert zoo.BUILDERS['resnet50'].input_shapes == ((1, 3, 224, 224),); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- published architectures (not torchvision): Ultralytics YOLOv8
# Parameters: ultralytics/cfg/models/v8/yolov8.yaml's summary comments (unfused model: BatchNorm weights and biases and
# the 16 fixed DFL weights included). GFLOPs: the YOLOv8 README table at 640 (BN-folded "fused" model, 2 per MAC).
YOLOV8_PUBLISHED = {"yolov8n": (3_157_200, 8.7), "yolov8s": (11_166_560, 28.6), "yolov8m": (25_902_640, 78.9),
                    "yolov8l": (43_691_520, 165.2), "yolov8x": (68_229_648, 257.8)}


def test_every_published_architecture_has_its_published_counts():
    assert sorted(name for name, b in BUILDERS.items() if b.source) == sorted(
        [*YOLOV8_PUBLISHED, "mobilenet_v1", "ssd_mobilenet_v1"])


def test_mobilenet_v1_counts_by_hand_and_the_papers_569m_mult_adds():
    from embodied_tui.analysis.torch.analyze import analyze_module

    # stem 3x3/2 conv 3->32 at 112x112, then (cout, stride) per depthwise-separable block (the paper's Table 1)
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    params, macs, cin, size = 3 * 32 * 9 + 2 * 32, 3 * 32 * 9 * 112 * 112, 32, 112
    for cout, stride in blocks:
        size //= stride
        params += cin * 9 + 2 * cin + cin * cout + 2 * cout  # depthwise, BN, pointwise, BN (no conv biases)
        macs += (cin * 9 + cin * cout) * size * size
        cin = cout
    params += 1024 * 1000 + 1000
    macs += 1024 * 1000
    model = meta_model("mobilenet_v1")
    fields = analyze_module(model, [[1, 3, 224, 224]], fmt="pickle", detail="")
    assert fields["params"] == sum(p.numel() for p in model.parameters()) == params
    assert fields["macs"] == macs
    assert abs(macs / 569e6 - 1) < 0.01  # "569 million mult-adds", 4.2 million parameters (Howard et al. 2017)
    assert round(params / 1e6, 1) == 4.2


@pytest.mark.parametrize("name", sorted(YOLOV8_PUBLISHED))
def test_yolov8_counts_match_ultralytics(name):
    from torch.utils.flop_counter import FlopCounterMode

    from embodied_tui.analysis.torch.analyze import analyze_module

    params, gflops = YOLOV8_PUBLISHED[name]
    model = meta_model(name)
    assert sum(p.numel() for p in model.parameters()) == params
    with FlopCounterMode(display=False) as counter:
        out = model(torch.empty(1, 3, 640, 640, device="meta"))
    assert tuple(out.shape) == (1, 4 + 80, 80 * 80 + 40 * 40 + 20 * 20)  # strides 8, 16, 32
    assert abs(counter.get_total_flops() / 1e9 - gflops) / gflops < 0.01
    fields = analyze_module(model, [[1, 3, 640, 640]], fmt="pickle", detail="")
    assert fields["params"] == params
    assert abs(2 * fields["macs"] / 1e9 - gflops) / gflops < 0.01
    assert fields["macs"] == counter.get_total_flops() // 2  # one convention: a MAC is 2 FLOPs


def test_yolov8_widths_follow_the_yaml_scales():
    # yolov8m: width 0.75, max_channels 768 -> P5 has min(1024, 768) x 0.75 = 576 channels; depth 0.67 -> 2, 4, 4, 2
    shapes = shapes_of(meta_model("yolov8m"))
    assert shapes["backbone.stage4.0.conv.weight"] == (576, 384, 3, 3)
    assert max(int(k.split(".")[4]) for k in shapes if k.startswith("backbone.stage2.1.m.")) + 1 == 4
    # the class branch widens to max(P3 channels, min(80, 100)) = max(64, 80) on yolov8n
    assert shapes_of(meta_model("yolov8n"))["head.cv3.0.0.conv.weight"] == (80, 64, 3, 3)


def test_yolov8_decodes_boxes_as_the_expected_distance_bins():
    model = BUILDERS["yolov8n"].build()
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = model.head(model.neck(model.backbone(x)))
        out = model(x)
    assert out.shape == (1, 84, 16 * 16 + 8 * 8 + 4 * 4)
    # anchor 0: grid cell (0.5, 0.5) at stride 8; distances are the softmax expectation over bins 0..15
    probs = raw[0, :64, 0].view(4, 16).softmax(1)
    left, top, right, bottom = (probs * torch.arange(16.0)).sum(1)
    expected = torch.stack([0.5 + (right - left) / 2, 0.5 + (bottom - top) / 2, left + right, top + bottom]) * 8
    torch.testing.assert_close(out[0, :4, 0], expected)
    torch.testing.assert_close(out[0, 4:, 0], raw[0, 64:, 0].sigmoid())


def test_ssd_mobilenet_v1_has_1917_anchors_and_hailos_published_size():
    from torch.utils.flop_counter import FlopCounterMode

    from embodied_tui.analysis.torch.analyze import analyze_module

    model = meta_model("ssd_mobilenet_v1")
    with FlopCounterMode(display=False) as counter:
        boxes, scores = model(torch.empty(1, 3, 300, 300, device="meta"))
    anchors = 19 * 19 * 3 + (10 * 10 + 5 * 5 + 3 * 3 + 2 * 2 + 1 * 1) * 6  # the TF OD API's 1917 anchors
    assert tuple(boxes.shape) == (1, anchors, 4) and tuple(scores.shape) == (1, anchors, 91)
    fields = analyze_module(model, [[1, 3, 300, 300]], fmt="pickle", detail="")
    assert fields["macs"] == counter.get_total_flops() // 2
    # Hailo model zoo: 6.79 M parameters, 2.5 G OPs (= 2 x MACs): equal within the digits it prints
    params = sum(p.numel() for p in model.parameters())
    assert fields["params"] == params and abs(params / 6.79e6 - 1) < 0.01
    assert abs(2 * fields["macs"] / 1e9 - 2.5) <= 0.05
    # the backbone is MobileNetV1 up to conv13: its parameters without the classifier
    v1 = meta_model("mobilenet_v1")
    assert sum(p.numel() for p in model.backbone.parameters()) == sum(p.numel() for p in v1.features.parameters())
