# libFuzzer target for p2p/relay_* (circuit relay v2): see relay_fuzz.cc and docs/fuzzing.md.
add_executable(relay_fuzz ${CMAKE_CURRENT_LIST_DIR}/relay_fuzz.cc)
target_include_directories(relay_fuzz PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(relay_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(relay_fuzz PRIVATE -fsanitize=fuzzer)
