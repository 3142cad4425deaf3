"""The tooltips of the Model & training panel: what each choice does and what it costs."""
from frelon.common.lr_policy import RULES, defaults_in_words

TIPS = {
    "task": "Classification: one label per image (class sub-folders).\nDetection: boxes around objects "
            "(COCO, VOC or YOLO), trained as a CenterNet on the chosen backbone.\n'Detect from data' lets the "
            "data doctor decide.",
    "backbone": "The pretrained network the model is built on. Larger backbones are more accurate but slower "
                "and need more memory. Only backbones marked 'offline' work without a download.",
    "weights": "ImageNet: start from pretrained weights (fine-tuning; far better with few images).\n"
               "None: random initialisation (needs much more data and epochs).\nFile: your own weights.",
    "image_size": "Images are resized to this side. Larger sees finer detail but costs memory and time "
                  "roughly with the square of the size.\nfrom the data: the training images' typical side "
                  "rounded up to a multiple of 32 (64–224 for classification, 128–512 for detection).",
    "epochs": "Passes over the training images. More epochs can fit better but can also over-fit a small set.",
    "batch": "Images per step on each device. Larger batches use more memory; the LR is scaled with the "
             "global batch (see effective LR), so results stay comparable.",
    "lr": f"Base learning rate at the reference batch; auto = the optimizer's own ({defaults_in_words()}).\n"
          "The effective LR follows the global batch: AdamW by the square root of the batch ratio (timm), "
          "SGD linearly (Goyal et al., 2017). Arrows halve / double it; 'Find LR' measures it on your data.",
    "effective_auto": "An automatic LR to fine-tune a classifier is chosen when training starts: the "
                      "training images go once through the pretrained backbone, and the better its "
                      "features already separate your classes (a 5-nearest-neighbour vote), the lower "
                      "the LR, so that fine-tuning adapts them instead of overwriting them. The log "
                      "and the run's config say which was chosen. The dashed curve is the lowest.",
    "ref_batch": f"The batch size the base LR is meant for; auto = the optimizer's own (AdamW "
                 f"{RULES['adamw'].ref_batch}, SGD {RULES['sgd'].ref_batch}).",
    "head_lr_mult": "The parts that start from scratch (the classifier head; the detector's neck and heads) "
                    "learn this many times faster than the pretrained backbone, which only needs nudging.",
    "flip": "Mirror training images left–right. auto: on, except when class names are digits, letters, "
            "text or signs (a mirrored '2' is no digit). The data doctor says which it chose.",
    "detector": "TTF: a neck fed by the backbone's finer maps too, boxes learnt from every cell around "
                "each centre — converges in minutes on a few hundred images.\nCenterNet: the paper's "
                "ResNet variant (centre cells only); slower to learn on small sets.",
    "accumulate": "Sum gradients over N steps before updating: a larger global batch without more memory, "
                  "at the cost of fewer updates per epoch.",
    "warmup": "Epochs over which the LR rises linearly from about 0 to the effective LR. Longer warmup "
              "protects pretrained weights from the first noisy updates; needed more with large batches.",
    "optimizer": "AdamW: robust default for fine-tuning.\nSGD with momentum: sometimes better final accuracy, "
                 "more sensitive to the LR.",
    "freeze": "Train the new head only; the backbone (and its BatchNorm statistics) stays as pretrained. "
              "Much faster and less memory, good with very few images; usually less accurate.",
    "augment": "default: random resized crop, flip, colour jitter (good for most photos).\nlight: crop and flip "
               "only.\nrandaugment: stronger, for larger sets that over-fit.\nnone: no augmentation (over-fits fast).",
    "noise": "Gaussian noise added to every training picture, its standard deviation in 8-bit pixel levels "
             "(0 = off; 5–10 is faint, 25 clearly grainy). Helps a model that will see noisy or compressed "
             "pictures; 'Preview augmentation' shows it.",
    "checkpointing": "Gradient checkpointing: keep fewer activations and recompute them in the backward pass.\n"
                     "off: fastest, most memory.\nstages: recompute each stage, a large cut in activation memory "
                     "for about a third more compute.\nblocks: recompute each block, the least memory, slowest.",
    "gpus": "More GPUs: each takes its own batch, so the global batch grows with the count and the "
            "effective LR grows proportionally (with warmup to keep it stable). Runs through torchrun.\n"
            "0 = train on the CPU.",
    "amp": "Mixed precision (bf16, else fp16): about half the activation memory and faster on recent GPUs; "
           "a small risk of numerical trouble. GPU only.",
}


# the Schedule list's tooltip: what each LR schedule (common/schedule.py) does
SCHEDULE_HELP = {
    "cosine": "Linear warmup, then half a cosine from the effective LR down to 0 at the last step. "
              "A smooth decay that rarely needs tuning: the usual choice for fine-tuning.",
    "step": "Linear warmup, then the LR is multiplied by 0.1 after 1/3 and again after 2/3 of the "
            "remaining steps. Classic; the drops show as steps in the loss.",
    "constant": "Linear warmup, then the effective LR until the end. Simple, but the final "
                "epochs do not settle as well as with a decay.",
}
