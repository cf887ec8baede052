# libFuzzer target for p2p/noise: see noise_fuzz.cc and docs/fuzzing.md.
add_executable(noise_fuzz ${CMAKE_CURRENT_LIST_DIR}/noise_fuzz.cc)
target_link_libraries(noise_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(noise_fuzz PRIVATE -fsanitize=fuzzer)
