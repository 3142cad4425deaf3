"""Detection datasets: COCO JSON, Pascal VOC XML and YOLO txt read into one record type.

This package owns the three readers (`coco`, `voc`, `yolo`, sharing `records` and `checks`),
layout detection (`layout`), the train / val split (`scan`) and the detection report (`report`)
behind `frelon check --task detect` and the `data_report` event. Every image is checked once with
`data.images.probe` (in data/probing.py's thread pool, which the classification doctor uses too):
its size after EXIF orientation, and its SHA-1 to find duplicates and train / val leaks.

The package does not import torch (`frelon check` starts in well under a second, importing
torchvision takes seconds): box formats are converted in plain Python, box by box, where each
box's problem is also named, rather than with `torchvision.ops.box_convert`.

Every reader returns `DetectionRecord`s with boxes in the image's pixels as (x1, y1, x2, y2),
labels as indices into one class list, and a crowd flag per box (COCO `iscrowd`, VOC `difficult`):
crowd boxes are kept for evaluation (pycocotools ignores detections matched to them) and left out
of the training targets.

What a problem costs (the README's table "What stops a run and what is skipped"; each row is
tested in tests/robustness/test_reader_rules.py):
  * the set: only what defines it — a malformed or unreadable COCO JSON, a missing top-level key,
    a broken `categories` list (the class list would be ambiguous), a missing or malformed YOLO
    data.yaml / classes.txt, a VOC folder without any XML, or no usable image at all — raises
    `DataError` naming the file and the line or entry;
  * one file: an image that is missing or does not decode, a VOC XML that is malformed, unreadable
    or not an <annotation>, a YOLO label file that cannot be read — that image is skipped and
    reported in `skipped`, the rest is used;
  * one entry: an images / annotations entry that is not an object or misses a required key, a VOC
    <object> without <name>, <bndbox> or a coordinate, a bad YOLO line, an unknown class, a box
    outside the image, of zero / negative / NaN size, with the wrong number of values or
    non-numbers, an annotation for an unlisted image, a file name escaping the dataset folder — is
    skipped and reported in `skipped` with its reason;
  * a box only partly outside its image is clipped and reported in `clipped` (more than 1 px out).
Valid edge cases are used as they are: non-contiguous category ids, images without objects (they
are negatives), crowd boxes, fractional coordinates.
"""
from .checks import check_box, list_images, safe_join
from .coco import coco_json_in, coco_split_files, read_coco, resolve_coco_image
from .layout import detect_layout
from .records import DetectionData, DetectionRecord, relabel
from .report import build_report
from .scan import check_detection, scan_detection, split_records
from .voc import read_voc
from .yolo import parse_yaml_names, read_yolo, yolo_label_path, yolo_names

__all__ = ["DetectionData", "DetectionRecord", "build_report", "check_box", "check_detection",
           "coco_json_in", "coco_split_files", "detect_layout", "list_images", "parse_yaml_names",
           "read_coco", "read_voc", "read_yolo", "relabel", "resolve_coco_image", "safe_join",
           "scan_detection", "split_records", "yolo_label_path", "yolo_names"]
