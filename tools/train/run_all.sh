#!/usr/bin/env bash
# Rebuilds the bundled model from scratch: corpus, tokenizer, training, GGUF export, evaluation, plot.
#
#   tools/train/run_all.sh            one training run with the kept settings (a GPU: ~2.5 min on an H200)
#   tools/train/run_all.sh sweep      the four-run sweep that chose them (side by side on one GPU)
#
# Environment: WORK (default tools/train/work, git-ignored), TFM (the tfm program, default
# build/examples/tfm/tfm; evaluate.py scores the file with libtfm too when it exists).
# Needs the Debian packages bible-kjv, bible-kjv-text, sentencepiece, python3-sentencepiece,
# python3-torch and python3-numpy. On a CPU the training step works but takes days (8 M parameters,
# 49 M training tokens). GPU runs are not bit-reproducible (cuBLAS and autocast reductions), so a re-run
# gives a model of the same quality, not the same bytes; docs/training.md records the shipped run.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=/usr/bin/python3
WORK=${WORK:-tools/train/work}
TFM=${TFM:-build/examples/tfm/tfm}
MODELS=examples/models

$py tools/train/prepare_data.py "$WORK" --heldout $MODELS/kjv-heldout.txt
$py tools/train/train_tokenizer.py "$WORK" --vocab-size 4000 --heldout $MODELS/kjv-heldout.txt
cp "$WORK/kjv-bpe.model" $MODELS/kjv-bpe.model
rm -rf "$WORK/run"
if [ "${1:-}" = sweep ]; then
    $py tools/train/sweep.py "$WORK" "$WORK/run" --time-budget 240
else
    $py tools/train/train.py "$WORK" "$WORK/run" --batch 32 --lr 1e-3 --warmup 100 --eval-every 50 --seed 1234 \
        --dropout 0.3 --steps 3000
fi
$py tools/train/export.py "$WORK/run" $MODELS/kjv-bpe.model --gguf $MODELS/kjv-llama.gguf
tfm_arg=()
[ -x "$TFM" ] && tfm_arg=(--tfm "$TFM")
$py tools/train/evaluate.py "$WORK/run" --gguf $MODELS/kjv-llama.gguf --tokenizer $MODELS/kjv-bpe.model \
    --heldout $MODELS/kjv-heldout.txt --out $MODELS/kjv-llama.json "${tfm_arg[@]}"
$py tools/train/plot_loss.py $MODELS/kjv-llama.json docs/kjv-llama-loss.svg
