# libFuzzer target for common/metrics_http: see metrics_http_fuzz.cc and docs/fuzzing.md.
add_executable(metrics_http_fuzz ${CMAKE_CURRENT_LIST_DIR}/metrics_http_fuzz.cc)
target_link_libraries(metrics_http_fuzz PRIVATE noloco_common)
target_link_options(metrics_http_fuzz PRIVATE -fsanitize=fuzzer)
