"""CenterNet: radius, targets, loss, decoding, the oracle mAP test, and a tiny model that learns."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image
from torch import nn

from frelon.engine.centernet import shapes
from frelon.engine.centernet import targets as T
from frelon.engine.centernet import transforms as TR
from frelon.engine.centernet.decode import Detections, decode, decode_to_original
from frelon.engine.centernet.loss import centernet_loss, focal_loss
from frelon.engine.centernet.model import CenterNet, CenterNetExport
from frelon.engine.cocoeval import coco_map
from frelon.engine.data.detection import DetectionRecord


@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread, and much faster on a busy machine (no spinning)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_backbone(width: int = 32) -> nn.Module:
    """Five stride-2 convs: the stride-32 map a registry backbone gives, in a few thousand weights."""
    layers, c = [], 3
    for out in (16, 16, 32, 32, width):
        layers += [nn.Conv2d(c, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- radius and targets

def _worst_iou(h: float, w: float, r: float) -> float:
    """The lowest IoU with the box when its corners move by at most r (CornerNet's three cases)."""
    translated = (w - r) * (h - r) / (2 * w * h - (w - r) * (h - r))
    shrunk = (w - 2 * r) * (h - 2 * r) / (w * h)
    grown = w * h / ((w + 2 * r) * (h + 2 * r))
    return min(translated, shrunk, grown)


@pytest.mark.parametrize("h, w", [(8, 8), (3, 40), (100, 7), (1.5, 2.5)])
def test_gaussian_radius_corrected_is_the_exact_iou_bound(h, w):
    r = T.gaussian_radius(h, w, official=False)
    assert _worst_iou(h, w, r) == pytest.approx(0.7, abs=1e-6)


# gaussian_radius((h, w), 0.7) of the official CenterNet code (src/lib/utils/image.py, whose three
# roots all use (b + sqrt(b^2 - 4ac)) / 2: the known bug), evaluated once and written down here
OFFICIAL_RADIUS = {(8, 8): 2.1865604245452097, (3, 40): 1.6302694599336824,
                   (100, 7): 3.8274412133405917, (24, 16): 5.264996618066867}


@pytest.mark.parametrize("hw", list(OFFICIAL_RADIUS))
def test_gaussian_radius_official_matches_the_official_codes_values(hw):
    assert T.gaussian_radius(*hw) == pytest.approx(OFFICIAL_RADIUS[hw], rel=1e-12)
    assert T.gaussian_radius(*hw, official=False) < T.gaussian_radius(*hw)      # the bug widens the peaks


def test_gaussian_radius_official_rounds_as_the_official_code():
    # the official code draws int(radius): for an 8 x 8 box, 2 cells; the exact bound gives 0
    assert int(T.gaussian_radius(8.0, 8.0)) == 2 and int(T.gaussian_radius(8.0, 8.0, official=False)) == 0


def test_draw_gaussian_peak_max_merge_and_borders():
    hm = torch.zeros(10, 10)
    T.draw_gaussian(hm, 2, 2, 2)
    T.draw_gaussian(hm, 4, 2, 2)
    assert hm[2, 2] == 1 and hm[2, 4] == 1                   # both peaks survive (max, not sum)
    assert hm[2, 3] < 1 and hm.max() == 1
    T.draw_gaussian(hm, 0, 9, 3)                             # at a corner: clipped, no error
    assert hm[9, 0] == 1
    T.draw_gaussian(hm, 5, 5, 0)
    assert hm[5, 5] == 1 and hm[5, 6] == 0


def test_encode_centres_sizes_offsets_crowd_and_cap():
    boxes = torch.tensor([[8.0, 8.0, 24.0, 16.0], [40.0, 40.0, 42.0, 44.0], [0.0, 0.0, 60.0, 60.0]])
    labels = torch.tensor([0, 1, 1])
    t = T.encode(boxes, labels, 2, (16, 16), iscrowd=torch.tensor([False, False, True]), max_objects=4)
    assert t["mask"].tolist() == [1, 1, 0, 0]                 # the crowd box is no target
    assert t["heatmap"][0, 3, 4] == 1 and t["heatmap"][1, 10, 10] == 1
    assert t["heatmap"].eq(1).sum() == 2
    assert t["index"][0] == 3 * 16 + 4 and t["size"][0].tolist() == [4.0, 2.0]
    assert t["offset"][1].tolist() == pytest.approx([0.25, 0.5])
    capped = T.encode(torch.tensor([[0, 0, 8.0, 8], [20, 20, 24, 24], [40, 40, 60, 60.0]]), torch.zeros(3),
                      1, (16, 16), max_objects=2)
    assert capped["mask"].sum() == 2 and capped["heatmap"].eq(1).sum() == 3   # largest boxes first
    assert capped["size"][0].tolist() == [5.0, 5.0]


# ---------------------------------------------------------------- oracle: encode then decode

def _perfect_outputs(t: dict, num_classes: int, out: tuple[int, int]) -> dict:
    """The outputs of a network that predicts its targets exactly."""
    hm = t["heatmap"].clamp(1e-6, 1 - 1e-6)
    size = torch.zeros(2, out[0] * out[1])
    offset = torch.zeros(2, out[0] * out[1])
    m = t["mask"].bool()
    size[:, t["index"][m]] = t["size"][m].T
    offset[:, t["index"][m]] = t["offset"][m].T
    return {"heatmap": (hm.log() - (-hm).log1p())[None], "size": size.view(1, 2, *out),
            "offset": offset.view(1, 2, *out)}


def _random_records(n: int, seed: int) -> list[DetectionRecord]:
    g = torch.Generator().manual_seed(seed)
    recs = []
    for i in range(n):
        w, h = int(torch.randint(60, 200, (1,), generator=g)), int(torch.randint(60, 200, (1,), generator=g))
        boxes, labels = [], []
        for _ in range(int(torch.randint(0, 5, (1,), generator=g))):
            def uniform(lo, hi):
                return float(torch.empty(1).uniform_(lo, hi, generator=g))
            bw, bh = uniform(12, w / 2), uniform(12, h / 2)
            x, y = uniform(0, w - bw), uniform(0, h - bh)
            if any(not (x + bw < b[0] or b[2] < x or y + bh < b[1] or b[3] < y) for b in boxes):
                continue                                   # CenterNet needs distinct centres
            boxes.append([x, y, x + bw, y + bh])
            labels.append(int(torch.randint(0, 3, (1,), generator=g)))
        recs.append(DetectionRecord(f"{i}.png", f"{i}.png", w, h, boxes, labels, [False] * len(boxes), i))
    return recs


def test_oracle_targets_decoded_give_map50_of_one():
    """Ground truth through letterbox → targets → perfect maps → decode → original pixels."""
    size, out = 128, (32, 32)
    eval_tf = TR.eval_transform(size, [0.0] * 3, [1.0] * 3)
    records = _random_records(30, seed=0)
    detections = []
    for rec in records:
        img = Image.new("RGB", (rec.width, rec.height))
        _, tgt = eval_tf(img, TR.make_target(rec.boxes, rec.labels, rec.iscrowd, rec.width, rec.height))
        t = T.encode(tgt["boxes"], tgt["labels"], 3, out)
        detections += decode_to_original(_perfect_outputs(t, 3, out),
                                         [TR.letterbox_params(rec.width, rec.height, size)])
    metrics = coco_map(records, detections, ["a", "b", "c"])
    assert sum(len(r.boxes) for r in records) > 40
    assert metrics["map_50"] >= 0.99
    assert metrics["map"] >= 0.9                       # only the stride-4 rounding of sizes is lost


# ---------------------------------------------------------------- decoding

def _maps(heat: torch.Tensor) -> dict:
    b, c, h, w = heat.shape
    logits = heat.clamp(1e-6, 1 - 1e-6)
    return {"heatmap": logits.log() - (-logits).log1p(), "size": torch.full((b, 2, h, w), 2.0),
            "offset": torch.full((b, 2, h, w), 0.5)}


def test_decode_hand_made_heatmap():
    heat = torch.zeros(1, 2, 8, 8)
    heat[0, 0, 2, 3] = 0.9
    heat[0, 0, 2, 4] = 0.6        # a neighbour of a higher peak: suppressed by the 3×3 max-pool
    heat[0, 1, 6, 1] = 0.7
    heat[0, 1, 0, 7] = 0.005      # below the score floor
    (det,) = decode(_maps(heat), k=10)
    assert det.scores.tolist() == pytest.approx([0.9, 0.7])
    assert det.labels.tolist() == [0, 1]
    # centre (3 + 0.5, 2 + 0.5) cells × 4 px, size 2 cells × 4 px
    assert det.boxes[0].tolist() == pytest.approx([10.0, 6.0, 18.0, 14.0])
    assert det.boxes[1].tolist() == pytest.approx([2.0, 22.0, 10.0, 30.0])


def test_decode_k_capped_by_map_size_and_mapped_back():
    heat = torch.full((2, 1, 2, 2), 0.5)
    dets = decode(_maps(heat), k=100)                     # 4 cells: no error, ≤ 4 detections
    assert all(len(d) <= 4 for d in dets)
    p = TR.letterbox_params(200, 100, 8)                  # scale 0.04, padded at the bottom
    heat = torch.zeros(1, 1, 2, 2)
    heat[0, 0, 0, 0] = 0.9
    (mapped,) = decode_to_original(_maps(heat), [p])
    assert mapped.boxes[:, 0::2].max() <= 200 and mapped.boxes[:, 1::2].max() <= 100
    assert mapped.boxes[0].tolist() == pytest.approx([0.0, 0.0, 150.0, 100.0])


def test_letterbox_maps_boxes_back_exactly():
    tf = TR.eval_transform(64, [0.0] * 3, [1.0] * 3)
    img = Image.new("RGB", (100, 50))
    x, t = tf(img, TR.make_target([[10, 5, 30, 45]], [0], [False], 100, 50))
    assert x.shape == (3, 64, 64)
    assert t["boxes"].flatten().tolist() == pytest.approx([6.4, 3.2, 19.2, 28.8])
    back = TR.letterbox_params(100, 50, 64).to_original(t["boxes"].as_subclass(torch.Tensor))
    assert back.flatten().tolist() == pytest.approx([10, 5, 30, 45])


def test_train_transform_keeps_labels_and_crowd_with_their_boxes():
    torch.manual_seed(0)
    tf = TR.train_transform(64, [0.5] * 3, [0.25] * 3)
    img = Image.new("RGB", (120, 80), (50, 100, 150))
    for _ in range(20):
        x, t = tf(img, TR.make_target([[0, 0, 10, 10], [100, 60, 120, 80]], [0, 1], [False, True], 120, 80))
        assert x.shape == (3, 64, 64) and x.dtype == torch.float32
        assert len(t["boxes"]) == len(t["labels"]) == len(t["iscrowd"])
        for label, crowd in zip(t["labels"].tolist(), t["iscrowd"].tolist()):
            assert crowd == (label == 1)


# ---------------------------------------------------------------- loss

def _targets(batch: int = 2) -> dict:
    one = T.encode(torch.tensor([[8.0, 8.0, 24.0, 24.0], [30, 30, 50, 60]]), torch.tensor([0, 1]), 2, (16, 16))
    return T.collate_targets([one] * batch)


def test_loss_parts_and_sanity():
    t = _targets()
    one = _perfect_outputs({k: v[0] for k, v in t.items()}, 2, (16, 16))
    perfect = {k: v.repeat(2, 1, 1, 1) for k, v in one.items()}
    total, parts = centernet_loss(perfect, t)
    assert set(parts) == {"heatmap", "size", "offset"}
    assert parts["size"] == pytest.approx(0, abs=1e-6) and parts["offset"] == pytest.approx(0, abs=1e-6)
    noise = {name: torch.zeros(2, 2, 16, 16) for name in ("heatmap", "size", "offset")}
    worse, wparts = centernet_loss(noise, t)
    assert total < worse and parts["heatmap"] < wparts["heatmap"]
    assert total == pytest.approx(parts["heatmap"] + 0.1 * parts["size"] + parts["offset"])
    # normalised by the number of objects: a batch of 4 copies gives the loss of 2 copies
    four, _ = centernet_loss({k: v.repeat(2, 1, 1, 1) for k, v in noise.items()}, _targets(4))
    assert four == pytest.approx(float(worse), rel=1e-5)
    # images without objects: finite
    empty = T.collate_targets([T.encode(torch.zeros(0, 4), torch.zeros(0), 2, (16, 16))])
    z, _ = centernet_loss({k: v[:1] for k, v in noise.items()}, empty)
    assert torch.isfinite(z)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


# a 2 x 2 heatmap with one object: target [[1, 0.5], [0, 0]], predicted probabilities [[0.5, 0.25],
# [0.75, 0.1]]. By the paper's formula (alpha = 2, beta = 4), cell by cell:
#   peak (y = 1, p = 0.5):      -(1 - 0.5)^2 log 0.5                  = 0.25 * 0.693147 = 0.173287
#   y = 0.5, p = 0.25:          -(1 - 0.5)^4 0.25^2 log(1 - 0.25)    = 0.0625 * 0.0625 * 0.287682 = 0.001124
#   y = 0, p = 0.75:            -(1 - 0)^4 0.75^2 log(1 - 0.75)      = 0.5625 * 1.386294 = 0.779791
#   y = 0, p = 0.1:             -0.1^2 log 0.9                        = 0.01 * 0.105361 = 0.001054
# summed and divided by the one object: 0.955255
FOCAL_BY_HAND = 0.9552547365220178


def test_focal_loss_against_a_hand_computed_map():
    target = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    logits = torch.tensor([[[[_logit(0.5), _logit(0.25)], [_logit(0.75), _logit(0.1)]]]])
    assert float(focal_loss(logits, target, torch.tensor(1.0))) == pytest.approx(FOCAL_BY_HAND, rel=1e-6)
    assert float(focal_loss(logits, target, torch.tensor(2.0))) == pytest.approx(FOCAL_BY_HAND / 2, rel=1e-6)


def test_centernet_loss_against_a_hand_computed_total():
    """README: heatmap + 0.1 x size + 1 x offset, the L1 terms averaged over the objects' centre
    cells and both coordinates (the official RegL1Loss)."""
    logits = torch.tensor([[[[_logit(0.5), _logit(0.25)], [_logit(0.75), _logit(0.1)]]]])
    size = torch.full((1, 2, 2, 2), 100.0)            # only the centre cell (index 0) may count
    size[0, :, 0, 0] = torch.tensor([18.0, 4.0])
    offset = torch.full((1, 2, 2, 2), 100.0)
    offset[0, :, 0, 0] = torch.tensor([0.5, 0.0])
    targets = {"heatmap": torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]]),
               "size": torch.tensor([[[16.0, 8.0], [999.0, 999.0]]]),        # the second slot is unused
               "offset": torch.tensor([[[0.25, 0.5], [999.0, 999.0]]]),
               "index": torch.tensor([[0, 3]]), "mask": torch.tensor([[1, 0]])}
    total, parts = centernet_loss({"heatmap": logits, "size": size, "offset": offset}, targets)
    # size: (|18 - 16| + |4 - 8|) / 2 = 3;  offset: (|0.5 - 0.25| + |0 - 0.5|) / 2 = 0.375
    assert float(parts["size"]) == pytest.approx(3.0) and float(parts["offset"]) == pytest.approx(0.375)
    assert float(parts["heatmap"]) == pytest.approx(FOCAL_BY_HAND, rel=1e-6)
    assert float(total) == pytest.approx(FOCAL_BY_HAND + 0.1 * 3.0 + 1.0 * 0.375, rel=1e-6)


def test_focal_loss_is_fp32_and_finite_under_bf16_autocast():
    t = _targets()
    logits = torch.full((2, 2, 16, 16), 30.0, requires_grad=True)    # sigmoid rounds to 1 in bf16
    sizes = torch.randn(2, 2, 16, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = {"heatmap": logits * 1.0, "size": sizes * 1.0, "offset": sizes * 0.5}
        total, parts = centernet_loss(outputs, t)
    assert total.dtype == torch.float32 and torch.isfinite(total)
    total.backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(sizes.grad).all()
    # the clamp: a saturated wrong prediction costs at most -log(1e-4) per cell, never inf
    cells, objects = 2 * 2 * 16 * 16, t["mask"].sum()
    saturated = float(focal_loss(torch.full((2, 2, 16, 16), 80.0), t["heatmap"], objects))
    assert math.isfinite(saturated) and saturated <= -math.log(1e-4) * cells / float(objects)


# ---------------------------------------------------------------- model

def test_model_shapes_bias_and_export_wrapper():
    model = CenterNet(tiny_backbone(), 32, num_classes=3, neck_channels=(32, 16, 16)).eval()
    out = model(torch.zeros(2, 3, 64, 96))
    assert out["heatmap"].shape == (2, 3, 16, 24)
    assert out["size"].shape == out["offset"].shape == (2, 2, 16, 24)
    assert torch.allclose(model.heads["heatmap"][-1].bias, torch.tensor(-2.19))
    with torch.no_grad():
        heat, size, offset = CenterNetExport(model)(torch.zeros(1, 3, 64, 64))
    assert 0 <= float(heat.min()) and float(heat.max()) <= 1


def test_cocoeval_edge_cases():
    recs = [DetectionRecord("a", "a", 50, 50, [[5, 5, 20, 20]], [0], [False], 1),
            DetectionRecord("b", "b", 50, 50, [], [], [], 2)]
    none = [Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))] * 2
    m = coco_map(recs, none, ["x", "y"])
    assert {k: m[k] for k in ("map", "map_50", "per_class")} == {"map": 0.0, "map_50": 0.0, "per_class": {"x": 0.0, "y": None}}
    assert coco_map(recs[1:], none[:1], ["x", "y"])["map"] is None
    hit = [Detections(torch.tensor([[5.0, 5, 20, 20]]), torch.tensor([0.9]), torch.tensor([0])), none[0]]
    m = coco_map(recs, hit, ["x", "y"])
    assert m["map"] == pytest.approx(1.0) and m["per_class"] == {"x": pytest.approx(1.0), "y": None}


# ---------------------------------------------------------------- a tiny model learns the shapes

def test_tiny_model_loss_falls_on_shapes(tmp_path, one_thread):
    from frelon.engine.centernet.dataset import DetectionDataset, collate
    from frelon.engine.data.detection import scan_detection

    shapes.write_coco(tmp_path / "shapes", 32, size=64, seed=1, max_objects=2)
    data = scan_detection(tmp_path / "shapes", val_split=0)
    ds = DetectionDataset(data.train, TR.train_transform(64, [0.5] * 3, [0.25] * 3, "none"), 3, 64)
    batch = collate([ds[i] for i in range(len(ds))])
    torch.manual_seed(0)
    model = CenterNet(tiny_backbone(), 32, 3, neck_channels=(32, 16, 16))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(30):
        images, targets, _ = batch
        idx = torch.arange(step * 8, step * 8 + 8) % len(ds)
        loss, parts = centernet_loss(model(images[idx]), {k: v[idx] for k, v in targets.items()})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.7 * first, losses


def test_fast_max_pool_equals_torch():
    import torch.nn.functional as F

    from frelon.engine.centernet.decode import max_pool3x3
    x = torch.randn(2, 5, 7, 9)
    x[0, 0, :2, :2] = 3.0                                   # ties on a plateau
    assert torch.equal(max_pool3x3(x), F.max_pool2d(x, 3, stride=1, padding=1))


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_lite0"])
def test_every_trainable_parameter_gets_a_gradient(backbone, one_thread):
    """DDP (--gpus / --processes) refuses trainable parameters without gradient: the backbone's
    unused ImageNet classifier must be gone, everything else must learn."""
    from frelon.engine.tasks.detect import build_detector
    model, pre = build_detector(backbone, 2, weights="none")
    assert set(pre) >= {"mean", "std"}
    t = _targets(batch=1)
    loss, _ = centernet_loss(model(torch.zeros(1, 3, 64, 64)), t)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert not [n for n, p in model.named_parameters() if "fc." in n or "classifier." in n]


@pytest.mark.parametrize("background", [-2.19, -8.0, None])
def test_top_peaks_matches_the_plain_definition(background):
    """Sparse (trained-like), dense (an untrained plateau) and noisy maps: the same peaks, scores
    and order as max-pool NMS + top-K over the whole map."""
    import torch.nn.functional as F

    from frelon.engine.centernet.decode import max_pool3x3, top_peaks
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 20, 24, generator=g) * 3 if background is None else torch.full((4, 20, 24), background)
    x.view(-1)[torch.randperm(x.numel(), generator=g)[:30]] = torch.rand(30, generator=g) * 4 - 1
    for floor in (0.01, 0.0):
        scores, flat = top_peaks(x, max_pool3x3(x), 50, floor)
        probs = x.sigmoid()
        ref = probs * (F.max_pool2d(probs[None], 3, 1, 1)[0] == probs)
        want, want_flat = ref.reshape(-1).topk(50)
        ok = want >= floor
        if floor == 0.0:
            ok &= ref.reshape(-1)[want_flat] > 0
        assert torch.allclose(scores, want[ok])
        if len(set(want[ok].tolist())) == int(ok.sum()):        # no ties: the very same cells
            assert torch.equal(torch.sort(flat).values, torch.sort(want_flat[ok]).values)


# ---------------------------------------------------------------- the "ttf" recipe

def test_ttf_targets_by_hand():
    """One box of 32 × 16 px at stride 4 = 8 × 4 cells, centre cell (6, 4): the heatmap is 1 there,
    the Gaussian spans int(0.54·8/2) = 2 cells left/right and int(0.54·4/2) = 1 up/down; the 15 core
    cells all regress the box, with weights summing to log(32·16)."""
    t = T.encode_ttf(torch.tensor([[8.0, 8.0, 40.0, 24.0]]), torch.tensor([1]), 2, (12, 16))
    heat = t["heatmap"]
    assert heat[0].abs().sum() == 0                                # class 0 has no object
    assert heat[1, 4, 6] == 1.0 and int((heat[1] == 1).sum()) == 1
    nz = heat[1].nonzero()
    assert (nz[:, 0].min(), nz[:, 0].max(), nz[:, 1].min(), nz[:, 1].max()) == (3, 5, 4, 8)
    core = t["weight"] > 0
    assert int(core.sum()) == 15 and torch.equal(core, heat[1] > 0)
    assert float(t["weight"].sum()) == pytest.approx(math.log(512))
    assert t["weight"][4, 6] == t["weight"].max()                 # the centre weighs most
    assert torch.equal(t["box"][:, core], torch.tensor([[2.0], [2.0], [10.0], [6.0]]).expand(4, 15))
    assert float(t["num_objects"]) == 1.0


def test_ttf_targets_smaller_object_wins_overlapping_cells():
    big, small = [0.0, 0.0, 64.0, 64.0], [24.0, 24.0, 40.0, 40.0]     # same centre cell (8, 8)
    t = T.encode_ttf(torch.tensor([big, small]), torch.tensor([0, 1]), 2, (16, 16))
    # cores: the big box's reaches int(0.54·16/2) = 4 cells from the centre, the small one's 1
    assert torch.equal(t["box"][:, 8, 8], torch.tensor([6.0, 6.0, 10.0, 10.0]))
    assert torch.equal(t["box"][:, 5, 5], torch.tensor([0.0, 0.0, 16.0, 16.0]))   # only the big one's
    assert float(t["num_objects"]) == 2.0


def _outputs_for(boxes_cells, hw, shift_x: float = 0.0):
    """Network outputs that predict, at every cell, the box whose core it lies in (shifted by
    shift_x cells): built from the box list, independently of encode_ttf's maps."""
    h, w = hw
    size = torch.zeros(1, 2, h, w)
    offset = torch.zeros(1, 2, h, w)
    for x1, y1, x2, y2 in sorted(boxes_cells, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1])):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        for y in range(h):
            for x in range(w):
                size[0, :, y, x] = torch.tensor([x2 - x1, y2 - y1])
                offset[0, :, y, x] = torch.tensor([cx + shift_x - x, cy - y])
    return size, offset


def test_ttf_loss_by_hand():
    from frelon.engine.centernet.loss import ttf_loss
    t = T.encode_ttf(torch.tensor([[8.0, 8.0, 40.0, 24.0]]), torch.tensor([0]), 1, (12, 16))
    batch = {k: v.unsqueeze(0) for k, v in t.items()}
    heat = torch.logit(batch["heatmap"].clamp(1e-4, 1 - 1e-4))
    size, offset = _outputs_for([(2, 2, 10, 6)], (12, 16))
    _, parts = ttf_loss({"heatmap": heat, "size": size, "offset": offset}, batch)
    assert float(parts["size"]) == pytest.approx(0.0, abs=1e-6) and float(parts["offset"]) == pytest.approx(0.0, abs=1e-6)
    # every box one cell to the right: IoU = GIoU = 7/9 for an 8-cell-wide box (the enclosing box
    # is the union), so the GIoU loss is 2/9; L1 = (0.1·0 + 1·|1| + |0|) / 2 = 0.5
    size, offset = _outputs_for([(2, 2, 10, 6)], (12, 16), shift_x=1.0)
    total, parts = ttf_loss({"heatmap": heat, "size": size, "offset": offset}, batch)
    assert float(parts["size"]) == pytest.approx(2 / 9, rel=1e-5)
    assert float(parts["offset"]) == pytest.approx(0.5, rel=1e-5)
    assert float(total) == pytest.approx(float(parts["heatmap"]) + 5 * 2 / 9 + 0.5, rel=1e-5)


def test_ttf_perfect_outputs_decode_to_the_boxes():
    boxes = torch.tensor([[8.0, 8.0, 40.0, 24.0], [60.0, 20.0, 100.0, 60.0]])
    t = T.encode_ttf(boxes, torch.tensor([0, 1]), 2, (32, 32))
    # each cell predicts the box it is trained towards (the targets' own cell ownership)
    box = t["box"]
    size = torch.stack([box[2] - box[0], box[3] - box[1]]).unsqueeze(0)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    offset = torch.stack([(box[0] + box[2]) / 2 - xs, (box[1] + box[3]) / 2 - ys]).unsqueeze(0)
    heat = torch.logit(t["heatmap"].clamp(1e-4, 1 - 1e-4)).unsqueeze(0)
    det = decode({"heatmap": heat, "size": size, "offset": offset})[0]
    keep = det.scores > 0.5
    got = sorted(det.boxes[keep].tolist())
    assert len(got) == 2
    for g, want in zip(got, sorted(boxes.tolist())):
        assert g == pytest.approx(want, abs=1e-4)


def test_lateral_neck_shapes_and_gradients(one_thread):
    from frelon.engine.tasks.detect import build_detector
    model, _ = build_detector("resnet18", 3, weights="none", detector="ttf")
    assert model.neck_kind == "lateral"
    out = model(torch.zeros(2, 3, 64, 96)[..., :64])
    assert out["heatmap"].shape == (2, 3, 16, 16) and out["size"].shape == (2, 2, 16, 16)
    from frelon.engine.centernet.loss import ttf_loss
    t = T.encode_ttf(torch.tensor([[8.0, 8.0, 40.0, 40.0]]), torch.tensor([2]), 3, (16, 16))
    loss, _ = ttf_loss(model(torch.zeros(1, 3, 64, 64)), {k: v.unsqueeze(0) for k, v in t.items()})
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    plain, _ = build_detector("resnet18", 3, weights="none", detector="centernet")
    assert plain.neck_kind == "plain" and plain(torch.zeros(1, 3, 64, 64))["heatmap"].shape == (1, 3, 16, 16)


def test_tiny_model_learns_with_ttf_targets(tmp_path, one_thread):
    """The dense TTF targets train a tiny detector on shapes: the loss falls, and boxes decoded on
    the training images match the annotations (mAP@0.5 well above zero)."""
    from frelon.engine.centernet.dataset import DetectionDataset, collate
    from frelon.engine.centernet.loss import ttf_loss
    from frelon.engine.data.detection import scan_detection

    shapes.write_coco(tmp_path / "shapes", 16, size=64, seed=1, max_objects=2)
    data = scan_detection(tmp_path / "shapes", val_split=0)
    ds = DetectionDataset(data.train, TR.eval_transform(64, [0.5] * 3, [0.25] * 3), 3, 64, targets="ttf")
    images, targets, metas = collate([ds[i] for i in range(len(ds))])
    torch.manual_seed(0)
    model = CenterNet(tiny_backbone(), 32, 3, neck_channels=(32, 16, 16))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(120):
        idx = torch.arange(step * 8, step * 8 + 8) % len(ds)
        loss, _ = ttf_loss(model(images[idx]), {k: v[idx] for k, v in targets.items()})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-8:]) / 8 < 0.5 * sum(losses[:8]) / 8, losses[::10]
    model.eval()
    with torch.no_grad():
        dets = decode_to_original(model(images), [m["letterbox"] for m in metas])
    metrics = coco_map(data.train, dets, data.classes)
    assert metrics["map_50"] > 0.3, metrics
