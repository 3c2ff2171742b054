#!/bin/bash
# A world style held out of method development (neon: never used by any study before session 28) through the user's
# commands: `world render` (24 captioned images), `t2i lora` (the demo's style recipe: rank 16, 400 steps, lr 1e-3,
# batch 4), `customize` with its defaults (four scene prompts, as a user gives them) with the LoRA fused at weights
# 1 and 2 on each shipped video model, then blocks_oracle.py: the base T2V, naive injection, every block's adapters
# and the down and mid blocks', 16 pairs each, scored by the world's oracle.
#
#     bash studies/unseen/world_style.sh OUT [STYLE]        # STYLE: neon (default) or crayon
#
# Writes OUT/images, OUT/lora, OUT/w<weight>_<model>/ (customize's run folder, its validation.json and
# customization.json: which blocks its check recorded) and OUT/w<weight>_<model>.oracle (blocks_oracle.py's lines).
set -euo pipefail
OUT=$1 STYLE=${2:-neon}
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-python}
W=$($PY -c "from stillmoving.world.weights import shipped_model as m; print(m('animatediff').parent)")
mkdir -p "$OUT"
$PY -m stillmoving world render "$OUT/images" --images --style "$STYLE" --count 24
$PY -m stillmoving t2i lora --model "$W/t2v" -o "$OUT/lora" --images "$OUT/images" --rank 16 --steps 400 --lr 1e-3 \
    --batch-size 4 --overwrite > "$OUT/lora.log" 2>&1
LORA=$OUT/lora/pytorch_lora_weights.safetensors
source "$HERE/blocks_runs.sh"
for w in 1 2; do
  customize_and_score "$OUT/w$w" "$STYLE" "$LORA" $w --lora "$LORA:$w" \
    "a white dotted diamond on a dusk background in $STYLE style" "a green cross on a blue background in $STYLE style" \
    "a red circle on a gray background in $STYLE style" "a purple striped square on a black background in $STYLE style"
done
