# noloco_bench_matmul: fp32 matmul throughput through libtorch (the MFU denominator).
# Benchmarks are harnesses around trainer/core, so like it they may use torch directly.
add_executable(noloco_bench_matmul ${CMAKE_CURRENT_LIST_DIR}/matmul.cc ${CMAKE_CURRENT_LIST_DIR}/matmul_throughput.cc)
target_link_libraries(noloco_bench_matmul PRIVATE ${TORCH_LIBRARIES})
target_include_directories(noloco_bench_matmul SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
