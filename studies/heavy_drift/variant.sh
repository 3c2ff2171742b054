#!/bin/sh
# variant.sh NAME M1 [overrides...]: train, then eval at alpha 0 and diag losses
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1; PY=${PY:-.venv/bin/python}; D=$(dirname "$0"); mkdir -p ${STUDY_DIR:-runs/heavy_drift}/logs
name=$1; m1=$2; shift 2
$PY $D/customize.py $name $m1 "$@" > ${STUDY_DIR:-runs/heavy_drift}/logs/$name.train.log 2>&1 || { echo "$name train failed"; exit 1; }
$PY $D/evalv.py $name $m1 runs/$name/spatial_adapters.safetensors 2>&1 | grep -a "speed="
$PY $D/diag_loss.py runs/$name $m1 runs/$name/spatial_adapters.safetensors 2>&1 | grep -a "adapters"
