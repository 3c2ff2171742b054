#!/bin/bash
# The held-out cases of session 28's rule (docs/method.md, "A default of the down and mid blocks, on held-out
# customizations"): a second neon LoRA (`t2i lora --seed 1`) fused at weight 1.5, and the world's star by DreamBooth
# at lr 2e-4, each through `customize` with its defaults on both video models, scored by blocks_oracle.py.
#
#     bash studies/unseen/blocks_rule.sh OUT neon NEON_IMAGES    # NEON_IMAGES: world_style.sh's OUT/images
#     bash studies/unseen/blocks_rule.sh OUT star
set -euo pipefail
O=$1 CASE=$2
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-python}
W=$($PY -c "from stillmoving.world.weights import shipped_model as m; print(m('animatediff').parent)")
mkdir -p "$O"
if [ "$CASE" = neon ]; then
  $PY -m stillmoving t2i lora --model "$W/t2v" -o "$O/neon_lora_s1" --images "$3" --rank 16 --steps 400 --lr 1e-3 \
      --batch-size 4 --seed 1 --overwrite > "$O/neon_lora_s1.log" 2>&1
  ARG=$O/neon_lora_s1/pytorch_lora_weights.safetensors WT=1.5 LOOK=neon
  M1=(--lora "$ARG:$WT")
  P=("a white dotted diamond on a dusk background in neon style" "a green cross on a blue background in neon style"
     "a red circle on a gray background in neon style" "a purple striped square on a black background in neon style")
else
  $PY -m stillmoving world render "$O/star_images" --images --subject star --count 24
  $PY -m stillmoving t2i dreambooth --model "$W/t2v" -o "$O/star_db" --images "$O/star_images" --prompt "a sks star" \
      --use-captions --train-text-encoder --steps 1500 --lr 2e-4 --batch-size 4 --overwrite > "$O/star_db.log" 2>&1
  ARG=$O/star_db WT=1 LOOK=star
  M1=(--customized "$ARG")
  P=("a sks star on a dusk background" "a sks star on a blue background" "a sks star on a gray background"
     "a sks star on a black background")
fi
source "$HERE/blocks_runs.sh"
customize_and_score "$O/$CASE" $LOOK "$ARG" $WT "${M1[@]}" "${P[@]}"
