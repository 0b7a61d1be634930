# Sourced by scripts/gpu_bench.sh and scripts/gpu_demo.sh (bash): what cuda_check and the CUDA-graph check found on
# this GPU, turned into the switches that keep the runs after them off anything found broken.
#
#   cuda_verdict FILE    prints the switches cuda_check's output FILE calls for, as `VAR=0` words (nothing when
#                        every check passed):
#       SGVLM_CUDA_DELTA_RULE=0  a delta_rule_* check failed, or the process stopped while checking that family;
#       SGVLM_CUDA_KERNELS=0     a kernel_* check failed, or it stopped while checking the training kernels;
#       both                     it stopped later (in the model checks), or printed nothing at all.
#   switch_union A B     the words of A and B, each once, sorted.
#   graph_verdict FILE   prints `SGVLM_DECODE=eager` when the graph check in FILE did not find CUDA graphs decoding
#                        the op-by-op steps' tokens.
#
# cuda_check checks our kernels alone before the model (crates/model/examples/cuda_check.rs): the delta rule's 16
# lines (8 at each of two head sizes), then one line per training kernel, then the model's checks and a summary.

DELTA_RULE_LINES=16

cuda_verdict() {
    local file=$1 delta kernel
    if [ ! -s "$file" ]; then
        echo "SGVLM_CUDA_DELTA_RULE=0 SGVLM_CUDA_KERNELS=0"
        return
    fi
    delta=$(grep -c '"check":"delta_rule_' "$file")
    kernel=$(grep -c '"check":"kernel_' "$file")
    local out=()
    if grep '"check":"delta_rule_' "$file" | grep -q '"ok":false'; then out+=(SGVLM_CUDA_DELTA_RULE=0); fi
    if grep '"check":"kernel_' "$file" | grep -q '"ok":false'; then out+=(SGVLM_CUDA_KERNELS=0); fi
    if ! grep -q '"check":"summary"' "$file"; then
        if [ "$kernel" -eq 0 ] && [ "$delta" -lt "$DELTA_RULE_LINES" ]; then
            out+=(SGVLM_CUDA_DELTA_RULE=0)
        elif ! grep -q '"check":"forward_' "$file"; then
            out+=(SGVLM_CUDA_KERNELS=0)
        else
            out+=(SGVLM_CUDA_DELTA_RULE=0 SGVLM_CUDA_KERNELS=0)
        fi
    fi
    switch_union "${out[@]}"
}

# switch_union "A=0 B=0" "B=0 C=0" -> "A=0 B=0 C=0" (sorted, each once).
switch_union() {
    # shellcheck disable=SC2048,SC2086 # the words are the point
    printf '%s\n' $* | sort -u | tr '\n' ' ' | sed 's/ $//'
}

graph_verdict() {
    grep -q '"ok": true' "$1" 2>/dev/null || echo "SGVLM_DECODE=eager"
}
