# libFuzzer target for p2p/autonat* : see autonat_fuzz.cc and docs/fuzzing.md.
add_executable(autonat_fuzz ${CMAKE_CURRENT_LIST_DIR}/autonat_fuzz.cc)
target_include_directories(autonat_fuzz PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(autonat_fuzz PRIVATE noloco_p2p PkgConfig::SODIUM)
target_link_options(autonat_fuzz PRIVATE -fsanitize=fuzzer)
