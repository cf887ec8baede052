# libFuzzer target for p2p/multistream: see multistream_fuzz.cc and docs/fuzzing.md.
add_executable(multistream_fuzz ${CMAKE_CURRENT_LIST_DIR}/multistream_fuzz.cc)
target_link_libraries(multistream_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(multistream_fuzz PRIVATE -fsanitize=fuzzer)
