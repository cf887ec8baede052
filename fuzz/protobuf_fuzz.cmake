# libFuzzer target for p2p/protobuf: see protobuf_fuzz.cc and docs/fuzzing.md.
add_executable(protobuf_fuzz ${CMAKE_CURRENT_LIST_DIR}/protobuf_fuzz.cc)
target_link_libraries(protobuf_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(protobuf_fuzz PRIVATE -fsanitize=fuzzer)
