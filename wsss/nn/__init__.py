"""Building blocks shared by the stages' models: split timm backbones, the data preprocessor, the
model base class and the EMA teacher."""
