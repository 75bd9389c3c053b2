// ropekit/ropekit.h — everything, in one include.
#pragma once

#include "ropekit/apply.h"
#include "ropekit/config.h"
#include "ropekit/cos_sin_cache.h"
#include "ropekit/dtype.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"
#include "ropekit/ggml_rope.h"
#include "ropekit/gguf.h"
#include "ropekit/hf_config.h"
#include "ropekit/mlx_rope.h"
#include "ropekit/numerics.h"
#include "ropekit/position_rows.h"
#include "ropekit/query_scale.h"
#include "ropekit/targets.h"
#include "ropekit/thread_pool.h"
#include "ropekit/version.h"
