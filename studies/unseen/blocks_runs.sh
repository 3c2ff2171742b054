# Sourced by world_style.sh and blocks_rule.sh: one customization through `customize` with its defaults on each
# shipped video model, then blocks_oracle.py on the run. Needs PY, W (the shipped weights folder) and HERE (this
# folder) set by the caller.
#
#     customize_and_score RUN_PREFIX LOOK T2I WEIGHT M1_OPTION M1_VALUE PROMPT [PROMPT ...]
#
# T2I and WEIGHT are blocks_oracle.py's (a LoRA file and its weight, or a DreamBooth folder and 1); M1_OPTION and
# M1_VALUE are customize's (--lora FILE:WEIGHT or --customized FOLDER). Writes RUN_PREFIX_<model>/ (the run),
# RUN_PREFIX_<model>.log, .oracle and .oracle.log, and prints the blocks the run's check recorded and the oracle's lines.
customize_and_score() {
  local prefix=$1 look=$2 t2i=$3 weight=$4 m1_option=$5 m1_value=$6
  shift 6
  local prompts=() prompt model t2v ma run
  for prompt in "$@"; do prompts+=(--prompt "$prompt"); done
  for model in animatediff joint; do
    if [ $model = joint ]; then t2v=$W/t2v_joint ma=$W/motion_adapter_joint; else t2v=$W/t2v ma=$W/motion_adapter; fi
    run=${prefix}_$model
    $PY -m stillmoving customize --model "$t2v" --motion-adapter "$ma" "$m1_option" "$m1_value" "${prompts[@]}" \
      -o "$run" --overwrite > "$run.log" 2>&1
    $PY "$HERE/blocks_oracle.py" "$t2v" "$t2i" "$weight" "$run" "$look" > "$run.oracle" 2> "$run.oracle.log"
    echo "# $(basename "$run"): recorded $(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('spatial_blocks', 'every block'))" "$run/customization.json")"
    cat "$run.oracle"
  done
}
