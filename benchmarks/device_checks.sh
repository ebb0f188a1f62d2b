#!/bin/bash
# Every GPU figure of a session, in one run on a machine with one CUDA GPU and no network.
#
# The machine's python3 must hold torch (CUDA), numpy, pyarrow, scikit-learn, safetensors and
# tqdm; what else the service needs comes as wheels in .whl/ (pip download, see RESULTS.md).
# Data: the TMDB zip in .gpudata/ (the keyword pool of the load run). Results go to $OUT.
#
#   bash benchmarks/device_checks.sh
set -u
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
# The one import name, as the wheel lays it out: proto/topicproj is the package, models/ and
# service/ its subpackages (links, so the checkout's code is what runs).
pkg=/tmp/topicproj-import/topicproj
rm -rf /tmp/topicproj-import && mkdir -p "$pkg"
for entry in "$PWD"/proto/topicproj/*; do ln -s "$entry" "$pkg/"; done
ln -s "$PWD/models" "$pkg/models"
ln -s "$PWD/service" "$pkg/service"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}/tmp/topicproj-import:$PWD" PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

step() {  # name, seconds, command...: each step bounded, so a slow one leaves the rest time
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit} s)"
    local start=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    echo "== $name: exit $? in $((SECONDS - start)) s"
    tail -n 40 "$OUT/$name.log"
}

# 1. correctness against float64, kernel vs bandwidth, CUDA training, the server on CUDA
step gpu 170 python3 -m benchmarks gpu --out "$OUT/gpu.md"
# 2. the serving claim: batched against unbatched, both on the GPU
step load 150 python3 -m benchmarks load --device cuda --servers batched,unbatched \
    --scenarios 64x1,16x256 --duration 8 --warmup 2 --model runs/bench-model-tmdb50 \
    --data .gpudata/tmdb_5000_movies.csv.zip --out "$OUT/load.md"
# 3. against the peers a team would pick instead (Ray Serve is left out: its wheels do not fit
#    the transfer), and the response cache on Zipf traffic
step peers 200 python3 -m benchmarks peers --device cuda --servers batched,oip,plain,noop \
    --scenarios 64x1,16x256,4x1000 --duration 8 --warmup 2 --model runs/bench-model-tmdb50 \
    --data .gpudata/tmdb_5000_movies.csv.zip --out "$OUT/peers.md"
step cache 80 python3 -m benchmarks load --device cuda --servers batched,cached --zipf 1.1 \
    --scenarios 64x1 --duration 8 --warmup 2 --model runs/bench-model-tmdb50 \
    --data .gpudata/tmdb_5000_movies.csv.zip --out "$OUT/cache.md"
# 4. offline on the GPU: topicproj project --device cuda on the 1M catalog against its floor
step floor 230 python3 -m benchmarks floor --device cuda --skip-real --passes 2 \
    --out "$OUT/floor.md"
