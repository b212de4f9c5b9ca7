module quay-bridge/bench/loadgen

go 1.24
