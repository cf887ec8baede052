# libFuzzer target for cli/invite: see invite_fuzz.cc and docs/fuzzing.md.
add_executable(invite_fuzz ${CMAKE_CURRENT_LIST_DIR}/invite_fuzz.cc)
target_link_libraries(invite_fuzz PRIVATE noloco_cli_join noloco_p2p PkgConfig::SODIUM)
target_link_options(invite_fuzz PRIVATE -fsanitize=fuzzer)
