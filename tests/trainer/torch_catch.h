// Torch pulls in glog, whose CHECK macro would replace Catch's (a failing CHECK would then abort
// the whole test binary instead of being reported). Test files include this instead of both.
#pragma once

#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>
