"""The field's evaluation of customized video generation: CLIP-T, CLIP-I, DINO-I, temporal consistency
(metrics.py, on backbones.py's features), dynamic degree (dynamic_degree.py), a folder scored as a whole
(score.py, `stillmoving eval`) and the paper's comparison of variants (compare.py, `stillmoving compare`)."""
