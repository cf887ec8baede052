# Loopback bulk-transfer throughput: ChaCha20-Poly1305 limit, plain TCP, our TCP+Noise+yamux host.
add_executable(p2p_throughput
  ${CMAKE_CURRENT_LIST_DIR}/p2p_throughput.cc
  ${CMAKE_CURRENT_LIST_DIR}/p2p_throughput_noloco.cc)
target_include_directories(p2p_throughput PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(p2p_throughput PRIVATE noloco_p2p noloco_common asio_standalone
  PkgConfig::SODIUM Threads::Threads)
