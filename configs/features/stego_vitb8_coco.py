# STEGO on a frozen DINO ViT-B/8 for MS COCO 2014 (see stego_vitb8_voc.py for the recipe).
_base_ = ["./stego_vitb8_voc.py"]

neighbours = "work_dirs/coco_knn.json"
train_dataloader = dict(
    dataset=dict(
        neighbours=neighbours,
        dataset=dict(data_root="data/coco", classes="coco", split="train2014", img_dir="train2014"),
    )
)
