# libFuzzer target for p2p/identify and p2p/framing: see identify_fuzz.cc and docs/fuzzing.md.
add_executable(identify_fuzz ${CMAKE_CURRENT_LIST_DIR}/identify_fuzz.cc)
target_include_directories(identify_fuzz PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(identify_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(identify_fuzz PRIVATE -fsanitize=fuzzer)
