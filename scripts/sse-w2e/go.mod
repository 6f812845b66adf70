module sse-w2e

go 1.24
