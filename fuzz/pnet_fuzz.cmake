# libFuzzer target for p2p/pnet: see pnet_fuzz.cc and docs/fuzzing.md.
add_executable(pnet_fuzz ${CMAKE_CURRENT_LIST_DIR}/pnet_fuzz.cc)
target_link_libraries(pnet_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(pnet_fuzz PRIVATE -fsanitize=fuzzer)
