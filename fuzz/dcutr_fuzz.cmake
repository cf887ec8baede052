# libFuzzer target for p2p/dcutr* : see dcutr_fuzz.cc and docs/fuzzing.md.
add_executable(dcutr_fuzz ${CMAKE_CURRENT_LIST_DIR}/dcutr_fuzz.cc)
target_include_directories(dcutr_fuzz PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(dcutr_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(dcutr_fuzz PRIVATE -fsanitize=fuzzer)
