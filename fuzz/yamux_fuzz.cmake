# libFuzzer target for p2p/yamux: see yamux_fuzz.cc and docs/fuzzing.md.
add_executable(yamux_fuzz ${CMAKE_CURRENT_LIST_DIR}/yamux_fuzz.cc)
target_include_directories(yamux_fuzz PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(yamux_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(yamux_fuzz PRIVATE -fsanitize=fuzzer)
