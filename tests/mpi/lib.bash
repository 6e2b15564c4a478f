# Shared by the MPI tests (sourced after tests/cli/lib/expect.bash): mpiexec as this machine
# allows it (as root, oversubscribed, shared memory without CMA, which containers often forbid),
# a small dense synthetic video, and the run settings that cut it into chunks.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
unset NPTRACK_MODEL NPTRACK_TEST_FAIL
mpi() { local n=$1; shift; "$mpiexec" -n "$n" --oversubscribe "$@"; }
# 64 x 64 px frames (the CPU backend runs the shipped model on them in a few ms); chunks of 40
# frames overlapping by 12 (track.lost_frames 10 + confirm_frames 2).
RUN_SET=(-s chunking.frames=40 -s chunking.overlap=12 -s track.lost_frames=10 -s detect.threads=1)
synth_video() { # synth_video DIR FRAMES SEED
  "$bin" synth -q -c "$src/config/synth/dense.cfg" -s synth.frames="$2" -s synth.width=64 \
    -s synth.height=64 -s synth.seed="$3" -o "$1" || { echo "synth failed"; exit 1; }
}
# two_videos: $tmp/long.h5 (200 frames: several chunks) and $tmp/short.h5 (30: one), in videos.
two_videos() {
  synth_video "$tmp/l" 200 11
  synth_video "$tmp/s" 30 12
  mv "$tmp/l/video.h5" "$tmp/long.h5"
  mv "$tmp/s/video.h5" "$tmp/short.h5"
  videos=("$tmp/long.h5" "$tmp/short.h5")
}
# same_tables A B: the archives' tables are equal value by value (h5py), or, without Python, the
# tracks of each video exported as text are (the videos named by the caller's `videos` array, by
# file name without .h5, as nptrack names them in the archive).
same_tables() {
  if [ -n "${NPTRACK_PYTHON:-}" ]; then
    "$NPTRACK_PYTHON" "$src/tests/mpi/compare_tables.py" "$1" "$2" || fail "$1 and $2 differ"
  else
    local names=() p
    for p in "${videos[@]}"; do names+=("$(basename "$p" .h5)"); done
    for v in "${names[@]}"; do
      "$bin" export -q "$1" --video $v --tracks "$tmp/ta.txt" && "$bin" export -q "$2" --video $v \
        --tracks "$tmp/tb.txt" && cmp -s "$tmp/ta.txt" "$tmp/tb.txt" || fail "$1 and $2 differ ($v)"
    done
  fi
}
