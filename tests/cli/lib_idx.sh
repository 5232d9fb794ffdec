# Writes a small synthetic Fashion-MNIST-like data set (IDX files, 16 x 16, 10 classes of
# striped prototypes) for the CLI tests. Usage: . lib_idx.sh; write_idx DIR N_TRAIN N_TEST
be32() {
    local v=$1
    printf "\\x$(printf %02x $((v >> 24 & 255)))\\x$(printf %02x $((v >> 16 & 255)))\\x$(printf %02x $((v >> 8 & 255)))\\x$(printf %02x $((v & 255)))"
}
write_idx_split() { # dir prefix n
    local dir=$1 prefix=$2 n=$3 c i k
    local -a proto
    for c in 0 1 2 3 4 5 6 7 8 9; do
        local fmt=""
        for ((i = 0; i < 256; i++)); do
            if (( (i / 16 * (c + 1) + i % 16 * (10 - c)) % 7 < 3 )); then fmt+='\334'; else fmt+='\024'; fi
        done
        proto[c]=$fmt
    done
    {
        be32 2051; be32 "$n"; be32 16; be32 16
        for ((k = 0; k < n; k++)); do printf "${proto[k % 10]}"; done
    } > "$dir/$prefix-images-idx3-ubyte"
    {
        be32 2049; be32 "$n"
        for ((k = 0; k < n; k++)); do printf "\\$(printf %03o $((k % 10)))"; done
    } > "$dir/$prefix-labels-idx1-ubyte"
}
write_idx() { # dir n_train n_test
    mkdir -p "$1"
    write_idx_split "$1" train "$2"
    write_idx_split "$1" t10k "$3"
}
