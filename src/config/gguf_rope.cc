// GGUF metadata → ModelRope, resolved as llama.cpp's loader (`load_hparams`) and context set-up
// do (docs/gguf.md has the rules with their sources):
//   theta      rope.freq_base (default 10000); HunYuan: · alpha^(d/(d−2))
//   head       attention.key_length, else embedding_length / head_count (DeepSeek MLA: the
//              rotated q_pe/k_pe part, rope.dimension_count)
//   rotary     rope.dimension_count (default the head)
//   scaling    rope.scaling.type (default "linear"); factor (else scale_linear; 0 = none);
//              ext_factor = yarn_ext_factor, else 1 for "yarn" and 0 otherwise; the magnitude
//              llama.cpp ends up with (ggml's built-in YaRN term cancelled, PR 17945)
//   tensors    rope_freqs (divisors) or rope_factors_long / _short (LongRoPE)
// What fits an existing scaling type becomes it (plain, linear, YaRN, LongRoPE); the rest is
// GgmlScaling, ggml's arguments as they are.
#include <cmath>

#include "config/gguf_reader.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"
#include "ropekit/gguf.h"

namespace ropekit {
namespace {

std::string num(double v) {
  std::string s = std::to_string(v);
  return s;
}

std::int64_t required(const std::optional<std::int64_t>& v, const std::string& key,
                      const char* what) {
  if (!v) throw ConfigError(key, std::string("missing; expected ") + what);
  if (*v <= 0)
    throw ConfigError(key, std::string("expected ") + what + ", got " + std::to_string(*v));
  return *v;
}

const std::vector<double>* as_factors(const std::optional<std::vector<float>>& t,
                                      std::vector<double>& out, const char* name, int pairs) {
  if (!t) return nullptr;
  if (static_cast<int>(t->size()) != pairs)
    throw ConfigError(name, "expected " + std::to_string(pairs) +
                                " factors (rope.dimension_count / 2), got " +
                                std::to_string(t->size()));
  out.assign(t->begin(), t->end());
  return &out;
}

struct Resolved {
  double factor = 1.0;  // 1 / freq_scale
  double ext_factor = 0.0;
  std::int64_t n_ctx_orig = 0;
  double beta_fast = 32.0, beta_slow = 1.0;
  double magnitude = 1.0;
  std::optional<double> mscale_all_dim;  // DeepSeek: for the softmax-scale multiplier
  std::string type;
};

Resolved resolve(const GgufRopeMetadata& m, const GgufArchitecture& arch, std::int64_t ctx) {
  Resolved r;
  r.type = m.scaling_type.value_or("linear");  // llama.cpp's default when the key is absent
  if (r.type != "none" && r.type != "linear" && r.type != "yarn" && r.type != "longrope")
    throw ConfigError(m.key("rope.scaling.type"),
                      "expected none, linear, yarn or longrope, got \"" + r.type + "\"");
  std::optional<double> factor = m.factor;
  std::string factor_key = m.key("rope.scaling.factor");
  if (!factor && m.scale_linear) {
    factor = m.scale_linear;
    factor_key = m.key("rope.scale_linear");
  }
  if (factor && *factor < 0)
    throw ConfigError(factor_key, "expected a number >= 0 (0: no scaling), got " + num(*factor));
  r.factor = (r.type == "none" || !factor || *factor == 0) ? 1.0 : *factor;
  const bool yarn = r.type == "yarn";
  r.ext_factor =
      (m.yarn_ext_factor && *m.yarn_ext_factor >= 0) ? *m.yarn_ext_factor : (yarn ? 1.0 : 0.0);
  r.n_ctx_orig = m.original_context_length.value_or(ctx);
  if (r.n_ctx_orig <= 0)
    throw ConfigError(m.key("rope.scaling.original_context_length"),
                      "expected an integer > 0, got " + std::to_string(r.n_ctx_orig));
  r.beta_fast = m.yarn_beta_fast.value_or(32.0);
  r.beta_slow = m.yarn_beta_slow.value_or(1.0);
  if (!(r.beta_fast > 0))
    throw ConfigError(m.key("rope.scaling.yarn_beta_fast"),
                      "expected a number > 0, got " + num(r.beta_fast));
  if (!(r.beta_slow > 0))
    throw ConfigError(m.key("rope.scaling.yarn_beta_slow"),
                      "expected a number > 0, got " + num(r.beta_slow));
  const double attn = m.attn_factor.value_or(1.0);
  if (!(attn > 0))
    throw ConfigError(m.key("rope.scaling.attn_factor"), "expected a number > 0, got " + num(attn));
  // The magnitude, as llama.cpp's context set-up computes cparams.yarn_attn_factor
  // (llama-context.cpp, llama_context::llama_context): it starts from the loader's
  // hparams.yarn_attn_factor (rope.scaling.yarn_attn_factor, read only by some architectures,
  // default 1); with YaRN (ext_factor != 0) it is then *replaced* by
  //   get_mscale(s, mscale) / get_mscale(s, log_mul)   when the loader read a log multiplier,
  //   get_mscale(s)                                    otherwise,
  // times 1/(1 + 0.1 ln s), which cancels ggml's built-in 1 + 0.1 ln s (PR 17945): the net
  // magnitude is the first factor. Finally it is multiplied by rope.scaling.attn_factor.
  double yarn_attn = 1.0;
  if (m.yarn_attn_factor) {
    if (!(*m.yarn_attn_factor > 0))
      throw ConfigError(m.key("rope.scaling.yarn_attn_factor"),
                        "expected a number > 0, got " + num(*m.yarn_attn_factor));
    if (arch.reads_yarn_attn_factor) yarn_attn = *m.yarn_attn_factor;
  }
  if (r.ext_factor != 0) {
    // The log multiplier is read only by the loaders of some architectures (DeepSeek-2 and
    // its MLA relatives divide it by 0.1; Mistral 3 takes it as it is); others ignore it.
    const double log_mul =
        arch.reads_yarn_log_multiplier ? m.yarn_log_multiplier.value_or(0.0) : 0.0;
    if (log_mul != 0) {
      const double all_dim = arch.deepseek_yarn ? log_mul / 0.1 : log_mul;
      // llama.cpp: mscale = mscale_all_dim for DeepSeek-2 when it is not 1, else 1.
      const double mscale = arch.deepseek_yarn && all_dim != 1.0 ? all_dim : 1.0;
      yarn_attn = yarn_mscale(r.factor, mscale) / yarn_mscale(r.factor, all_dim);
      if (arch.deepseek_yarn) r.mscale_all_dim = all_dim;
    } else {
      yarn_attn = yarn_mscale(r.factor);
    }
  }
  r.magnitude = yarn_attn * attn;
  return r;
}

Scaling make_scaling(const GgufRopeMetadata& m, const Resolved& r, int n_rot, std::int64_t ctx) {
  const int pairs = n_rot / 2;
  std::vector<double> freqs, longf, shortf;
  const auto* ff = as_factors(m.rope_freqs, freqs, "rope_freqs.weight", pairs);
  const auto* lf = as_factors(m.rope_factors_long, longf, "rope_factors_long.weight", pairs);
  const auto* sf = as_factors(m.rope_factors_short, shortf, "rope_factors_short.weight", pairs);
  const bool plain = r.ext_factor == 0 && r.factor == 1.0;
  if (!ff && (lf || sf) && plain) {
    // LongRoPE: llama.cpp picks the long factors when the configured context exceeds the
    // original one (the plan's seq_len plays that role), else the short ones.
    LongRopeScaling l;
    l.long_factor = lf ? *lf : *sf;
    l.short_factor = sf ? *sf : *lf;
    l.attention_factor = r.magnitude;
    l.original_max_position_embeddings = r.n_ctx_orig;
    return l;
  }
  if (!ff && !lf && !sf) {
    if (r.ext_factor == 1.0 && r.type == "yarn") {
      YarnScaling y;
      y.factor = r.factor;
      y.original_max_position_embeddings = r.n_ctx_orig;
      y.beta_fast = r.beta_fast;
      y.beta_slow = r.beta_slow;
      y.attention_factor = r.magnitude;
      y.mscale_all_dim = r.mscale_all_dim;
      y.truncate = true;  // ggml always floors/ceils the correction range
      return y;
    }
    if (r.ext_factor == 0 && r.magnitude == 1.0)
      return r.factor == 1.0 ? Scaling{DefaultScaling{}} : Scaling{LinearScaling{r.factor}};
  }
  GgmlScaling g;
  g.factor = r.factor;
  g.ext_factor = r.ext_factor;
  g.original_max_position_embeddings = r.n_ctx_orig;
  g.beta_fast = r.beta_fast;
  g.beta_slow = r.beta_slow;
  g.attention_factor = r.magnitude;
  if (ff)
    g.freq_factors = *ff;
  else if (lf || sf)
    g.freq_factors = (lf && (!sf || ctx > r.n_ctx_orig)) ? *lf : *sf;
  return g;
}

}  // namespace

ModelRope gguf_model_rope(const GgufRopeMetadata& m) {
  ModelRope out;
  out.model_type = m.architecture;
  const GgufArchitecture* known = find_gguf_architecture(m.architecture);
  GgufArchitecture fallback;
  if (!known) {
    fallback.name = m.architecture;
    out.warnings.push_back({"general.architecture",
                            "architecture \"" + m.architecture +
                                "\" is not in ropekit's table; read as NEOX (half-split pairs) "
                                "without per-architecture conventions"});
  }
  const GgufArchitecture& arch = known ? *known : fallback;
  if (m.split_count > 1 && !m.rope_freqs && !m.rope_factors_long && !m.rope_factors_short)
    out.warnings.push_back({"split.count",
                            "a split file: RoPE tensors in other shards are not "
                            "read (only this first shard)"});

  const std::int64_t ctx = required(m.context_length, m.key("context_length"), "an integer > 0");
  std::int64_t head = 0;
  if (arch.head_is_rotary) {
    head = required(m.dimension_count, m.key("rope.dimension_count"),
                    "the rotated width of the q_pe/k_pe heads (an integer > 0)");
  } else if (m.key_length) {
    head = required(m.key_length, m.key("attention.key_length"), "an integer > 0");
  } else {
    const std::int64_t emb = required(m.embedding_length, m.key("embedding_length"),
                                      "an integer > 0 (or attention.key_length)");
    const std::int64_t heads =
        required(m.head_count, m.key("attention.head_count"), "an integer > 0");
    if (emb % heads != 0)
      throw ConfigError(m.key("embedding_length"), "expected a multiple of attention.head_count " +
                                                       std::to_string(heads) + ", got " +
                                                       std::to_string(emb));
    head = emb / heads;
  }
  if (head % 2 != 0 || head > (1 << 20))
    throw ConfigError(
        arch.head_is_rotary ? m.key("rope.dimension_count") : m.key("attention.key_length"),
        "expected an even head width <= 2^20, got " + std::to_string(head));
  auto rotary = [&](const std::optional<std::int64_t>& v, const std::string& key) {
    const std::int64_t n = v.value_or(head);
    if (n <= 0 || n % 2 != 0 || n > head)
      throw ConfigError(key, "expected an even number in [2, head " + std::to_string(head) +
                                 "], got " + std::to_string(n));
    return static_cast<int>(n);
  };
  const int n_rot = rotary(m.dimension_count, m.key("rope.dimension_count"));
  double theta = m.freq_base.value_or(10000.0);
  if (!(theta > 1.0))
    throw ConfigError(m.key("rope.freq_base"), "expected a number > 1, got " + num(theta));
  if (arch.alpha && m.alpha && *m.alpha > 0) {
    // llama.cpp's hunyuan-vl loader (load_arch_hparams, which hunyuan-dense reuses), in float32
    // with the head width (n_embd_head_k), not rope.dimension_count:
    //   rope_freq_base_train *= powf(alpha, (float)dim / (float)(dim − 2))
    const float dim = static_cast<float>(head);
    theta = static_cast<double>(static_cast<float>(theta) *
                                std::pow(static_cast<float>(*m.alpha), dim / (dim - 2.0f)));
  }
  const Resolved r = resolve(m, arch, ctx);
  if (m.yarn_log_multiplier && !arch.reads_yarn_log_multiplier)
    out.warnings.push_back({m.key("rope.scaling.yarn_log_multiplier"),
                            "ignored: llama.cpp's loader for \"" + m.architecture +
                                "\" does not read it (only DeepSeek-2-like and Mistral 3 do)"});
  if (m.yarn_attn_factor && (!arch.reads_yarn_attn_factor || r.ext_factor != 0))
    out.warnings.push_back(
        {m.key("rope.scaling.yarn_attn_factor"),
         arch.reads_yarn_attn_factor
             ? "ignored: with YaRN llama.cpp replaces it by the automatic magnitude"
             : "ignored: llama.cpp's loader for \"" + m.architecture + "\" does not read it"});

  RopeConfig full;
  full.model_type = m.architecture;
  full.rope_theta = theta;
  full.head_dim = static_cast<int>(head);
  full.rotary_dim = n_rot;
  full.partial_rotary_factor = static_cast<double>(n_rot) / static_cast<double>(head);
  full.max_position_embeddings = ctx;
  full.layout = arch.layout;
  full.scaling = make_scaling(m, r, n_rot, ctx);
  if (arch.mrope) {
    const std::string key = m.key("rope.dimension_sections");
    if (m.dimension_sections.size() < 3)
      throw ConfigError(key, "missing or short; expected the M-RoPE sections [t, h, w(, e)]");
    MRopeSpec spec;
    spec.assignment = *arch.mrope;
    int sum = 0;
    for (int i = 0; i < 3; ++i) sum += spec.section[i] = static_cast<int>(m.dimension_sections[i]);
    const int pairs = n_rot / 2;
    const bool interleaved = spec.assignment == MRopeAssignment::kInterleavedThw;
    if (sum != pairs ||
        (interleaved && (3 * spec.section[1] > pairs + 1 || 3 * spec.section[2] > pairs + 2)))
      throw ConfigError(
          key, "expected t + h + w = rope.dimension_count / 2 = " + std::to_string(pairs) +
                   (interleaved ? " with 3·h and 3·w within the pairs" : "") + ", got [" +
                   std::to_string(spec.section[0]) + ", " + std::to_string(spec.section[1]) + ", " +
                   std::to_string(spec.section[2]) + "]");
    full.mrope = spec;
  }

  // Sliding-window layers.
  const bool swa_differs =
      arch.swa_rope == 2 ||
      (arch.swa_rope == 1 && ((m.freq_base_swa && *m.freq_base_swa != theta) ||
                              (m.dimension_count_swa && *m.dimension_count_swa != n_rot)));
  if (!swa_differs) {
    out.layers.push_back(full);
    return out;
  }
  RopeConfig swa = full;
  full.layer_type = "full_attention";
  swa.layer_type = "sliding_attention";
  swa.rope_theta = m.freq_base_swa.value_or(arch.swa_rope == 2 ? arch.swa_default_base : theta);
  if (!(swa.rope_theta > 1.0))
    throw ConfigError(m.key("rope.freq_base_swa"),
                      "expected a number > 1, got " + num(swa.rope_theta));
  swa.rotary_dim = rotary(m.dimension_count_swa.value_or(n_rot), m.key("rope.dimension_count_swa"));
  swa.partial_rotary_factor = static_cast<double>(swa.rotary_dim) / static_cast<double>(head);
  if (arch.swa_rope == 2)
    swa.scaling = DefaultScaling{};
  else
    swa.scaling = make_scaling(m, r, swa.rotary_dim, ctx);
  out.layers = {full, swa};
  if (m.block_count && *m.block_count <= (1 << 20)) {
    const std::int64_t n = *m.block_count;
    if (!m.sliding_window_layers.empty()) {
      if (static_cast<std::int64_t>(m.sliding_window_layers.size()) != n)
        throw ConfigError(m.key("attention.sliding_window_pattern"),
                          "expected one flag per layer (" + std::to_string(n) + "), got " +
                              std::to_string(m.sliding_window_layers.size()));
      for (bool s : m.sliding_window_layers)
        out.layer_types.push_back(s ? "sliding_attention" : "full_attention");
    } else {
      const std::int64_t period = m.sliding_window_period.value_or(arch.swa_default_period);
      if (period > 0)
        for (std::int64_t i = 0; i < n;
             ++i)  // llama.cpp's set_swa_pattern: every period-th is full
          out.layer_types.push_back((i + 1) % period == 0 ? "full_attention" : "sliding_attention");
    }
  }
  return out;
}

ModelRope load_gguf_rope(const std::filesystem::path& path, const GgufReadOptions& options) {
  return gguf_model_rope(read_gguf_rope_metadata(path, options));
}

}  // namespace ropekit
