// N replicas in one process, one outer method, JSON lines per evaluation (docs/simulate.md).
#include "trainer/core/simulate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <thread>
#include <vector>

#include "common/log.h"
#include "trainer/core/codec.h"
#include "trainer/core/codec_torch.h"
#include "trainer/core/data.h"
#include "trainer/core/outer.h"
#include "trainer/core/replica.h"

namespace noloco::trainer {
namespace {

struct MethodDefaults {
  int64_t H;
  double alpha, beta, gamma;
};

MethodDefaults defaults_for(Method m) {
  switch (m) {
    case Method::kSync: return {1, 0, 0, 0};
    case Method::kDiloco: return {2 * kDefaultNolocoH, 0.3, 0.7, 0};
    case Method::kDilocoNesterov: return {2 * kDefaultNolocoH, 0.9, 0.7, 0};
    case Method::kNoloco: return {kDefaultNolocoH, 0.5, 0.7, 0.7};
    case Method::kNone: return {0, 0, 0, 0};
  }
  return {0, 0, 0, 0};
}

// Small JSON object writer: numbers and plain strings only (our strings need no escaping beyond
// quotes and backslashes).
class Json {
 public:
  Json& str(const char* k, const std::string& v) {
    key(k);
    s_ += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') s_ += '\\';
      s_ += c;
    }
    s_ += '"';
    return *this;
  }
  Json& num(const char* k, double v) {
    key(k);
    char buf[64];
    if (!std::isfinite(v)) {
      s_ += "null";
    } else {
      std::snprintf(buf, sizeof buf, "%.8g", v);
      s_ += buf;
    }
    return *this;
  }
  Json& integer(const char* k, int64_t v) {
    key(k);
    s_ += std::to_string(v);
    return *this;
  }
  std::string done() { return s_ + "}"; }

 private:
  void key(const char* k) {
    s_ += s_.size() > 1 ? ",\"" : "\"";
    s_ += k;
    s_ += "\":";
  }
  std::string s_ = "{";
};

double eval_model(const Gpt& model, const torch::Tensor& windows, int64_t chunk) {
  torch::NoGradGuard no_grad;
  double sum = 0.0;
  const int64_t rows = windows.size(0);
  for (int64_t r = 0; r < rows; r += chunk) {
    const int64_t n = std::min(chunk, rows - r);
    sum += model.loss(windows.narrow(0, r, n)).item<double>() * static_cast<double>(n);
  }
  return sum / static_cast<double>(rows);
}

// What a payload tensor costs on the wire and what the receiver gets back. Without a codec:
// raw fp32 and the receiver sees the exact values (no copy). With one: the real encoded message
// and its decoded values.
class Wire {
 public:
  explicit Wire(std::optional<codec::EncodeOptions> options) : options_(options) {}
  bool exact() const { return !options_; }

  // Encodes t; sets *received to what a peer decodes; returns the message size in bytes.
  Result<int64_t> send(const torch::Tensor& t, torch::Tensor* received) const {
    if (!options_) {
      *received = t;
      return t.numel() * 4;
    }
    NOLOCO_ASSIGN_OR_RETURN(Bytes msg, codec::encode_tensor(t, *options_));
    torch::Tensor out = torch::empty_like(t);
    codec::DecodeLimits limits;
    limits.max_elements = static_cast<uint64_t>(t.numel());
    NOLOCO_RETURN_IF_ERROR(codec::decode_tensor_into(msg, limits, out));
    *received = out;
    return static_cast<int64_t>(msg.size());
  }

 private:
  std::optional<codec::EncodeOptions> options_;
};

// "fp32", "bf16", "int8", "int4", each optionally with "+zstd".
Result<codec::EncodeOptions> parse_codec(const std::string& spec) {
  codec::EncodeOptions o;
  std::string mode = spec;
  if (mode.ends_with("+zstd")) {
    o.zstd = true;
    mode.resize(mode.size() - 5);
  }
  if (mode == "fp32") o.mode = codec::Mode::kFp32;
  else if (mode == "bf16") o.mode = codec::Mode::kBf16;
  else if (mode == "int8") o.mode = codec::Mode::kInt8;
  else if (mode == "int4") o.mode = codec::Mode::kInt4;
  else return invalid_argument("--codec '" + spec + "': use fp32, bf16, int8 or int4, optionally with +zstd");
  NOLOCO_RETURN_IF_ERROR(o.validate());
  return o;
}

class Simulation {
 public:
  Simulation(SimulateOptions o, const SimulateSinks& sinks) : o_(std::move(o)), sinks_(sinks) {}

  Status run() {
    NOLOCO_RETURN_IF_ERROR(setup());
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    evaluate(0, elapsed());
    for (int64_t step = 0; step < o_.steps; ++step) {
      double train_loss = inner_steps();
      if (o_.method != Method::kSync && o_.method != Method::kNone && (step + 1) % H_ == 0)
        NOLOCO_RETURN_IF_ERROR(outer_step());
      const bool last = step + 1 == o_.steps;
      if ((step + 1) % o_.eval_every == 0 || last) {
        evaluate(step + 1, elapsed());
        progress_line(step + 1, train_loss, elapsed());
      }
    }
    sinks_.emit(Json().str("type", "done").num("elapsed_s", elapsed()).done());
    return Status::Ok();
  }

 private:
  Status setup() {
    NOLOCO_ASSIGN_OR_RETURN(ModelConfig model, model_preset(o_.preset));
    NOLOCO_ASSIGN_OR_RETURN(corpus_, load_corpus(o_.data));
    split_ = split_corpus(corpus_);
    if (!o_.codec.empty()) {
      NOLOCO_ASSIGN_OR_RETURN(codec::EncodeOptions co, parse_codec(o_.codec));
      wire_ = Wire(co);
    }
    H_ = *o_.H;
    ReplicaConfig rc;
    rc.model = model;
    rc.inner.schedule.peak = o_.lr;
    rc.inner.schedule.warmup = o_.warmup;
    rc.inner.schedule.total = o_.steps;
    rc.batch = o_.batch;
    rc.seed = o_.seed;
    rc.device = o_.device;
    // SYNC keeps one model (every replica would hold the same weights) fed by all N shards.
    const int models = o_.method == Method::kSync ? 1 : o_.replicas;
    for (int r = 0; r < models; ++r) {
      ReplicaConfig rcr = rc;
      // Mixed before the replica index goes in: seed ^ r alone would give seeds 4..7 (any four
      // that differ only in their low bits) the same four offsets, shuffled among replicas.
      if (o_.whole_stream && o_.method != Method::kSync)
        rcr.data_seed = mix64(mix64(o_.data_seed != 0 ? o_.data_seed : o_.seed) ^ (0x5eed0000ULL + r)) | 1;
      NOLOCO_ASSIGN_OR_RETURN(auto rep, o_.whole_stream && o_.method != Method::kSync
                                            ? Replica::create(rcr, &split_.train, 0, 1)
                                            : Replica::create(rc, &split_.train, r, o_.replicas));
      replicas_.push_back(std::move(rep));
    }
    if (o_.method == Method::kSync) {
      for (int r = 0; r < o_.replicas; ++r) {
        NOLOCO_ASSIGN_OR_RETURN(ShardReader rd, ShardReader::create(&split_.train, r, o_.replicas,
                                                                   model.context + 1, o_.batch, o_.seed));
        sync_readers_.push_back(std::move(rd));
      }
      sync_buf_.resize(static_cast<size_t>(o_.replicas * o_.batch * (model.context + 1)));
    }
    NOLOCO_ASSIGN_OR_RETURN(torch::Device device, parse_device(o_.device));
    NOLOCO_ASSIGN_OR_RETURN(Bytes ev, eval_windows(split_.val, o_.eval_batches * o_.batch, model.context + 1));
    eval_bytes_ = std::move(ev);
    eval_windows_ = bytes_to_tokens(eval_bytes_.data(), o_.eval_batches * o_.batch, model.context + 1, device);
    avg_model_ = std::make_unique<Gpt>(model, o_.seed, device);
    for (auto& r : replicas_) views_.push_back(OuterView{r->theta(), r->phi(), r->delta()});
    for (auto& v : views_) view_ptrs_.push_back(&v);
    last_payload_.resize(views_.size());

    const bool theta_form = o_.method == Method::kNoloco &&
                            (o_.wire == "theta" || (o_.wire == "auto" && *o_.gamma == *o_.beta));
    theta_wire_ = theta_form;
    if (o_.method == Method::kNoloco) {
      const std::string w = noloco_param_warning({*o_.alpha, *o_.beta, *o_.gamma});
      if (!w.empty()) {
        NLOG_WARN("{}", w);
      }
    }
    const double bits = unigram_entropy_bits(corpus_);
    sinks_.emit(Json()
                    .str("type", "run")
                    .str("method", method_name(o_.method))
                    .integer("replicas", o_.replicas)
                    .str("preset", o_.preset)
                    .integer("params", parameter_count(model))
                    .integer("steps", o_.steps)
                    .integer("H", H_)
                    .num("alpha", *o_.alpha)
                    .num("beta", *o_.beta)
                    .num("gamma", *o_.gamma)
                    .integer("group_size", o_.group_size)
                    .integer("partner_lag", o_.partner_lag)
                    .str("wire", o_.method != Method::kNoloco ? "n/a" : theta_form ? "theta" : "delta-phi")
                    .str("codec", o_.codec.empty() ? "fp32" : o_.codec)
                    .num("lr", o_.lr)
                    .integer("warmup", o_.warmup)
                    .integer("batch", o_.batch)
                    .integer("context", model.context)
                    .integer("seed", static_cast<int64_t>(o_.seed))
                    .integer("data_seed", static_cast<int64_t>(o_.data_seed))
                    .integer("threads", o_.threads)
                    .str("device", o_.device)
                    .integer("corpus_bytes", static_cast<int64_t>(corpus_.size()))
                    .integer("train_bytes", static_cast<int64_t>(split_.train.size()))
                    .integer("val_bytes", static_cast<int64_t>(split_.val.size()))
                    .num("unigram_entropy_bits", bits)
                    .num("unigram_entropy_nats", bits_to_nats(bits))
                    .integer("eval_tokens", o_.eval_batches * o_.batch * model.context)
                    .done());
    sinks_.progress("simulate " + std::string(method_name(o_.method)) + ": " +
                    std::to_string(o_.replicas) + " replicas, " + std::to_string(parameter_count(model)) +
                    " params, unigram entropy " + std::to_string(bits_to_nats(bits)) + " nats");
    return Status::Ok();
  }

  // One inner step on every replica; returns the mean training loss.
  double inner_steps() {
    if (o_.method == Method::kSync) {
      const int64_t seq = replicas_[0]->config().model.context + 1;
      for (int r = 0; r < o_.replicas; ++r)
        sync_readers_[static_cast<size_t>(r)].next_batch(sync_buf_.data() + r * o_.batch * seq);
      torch::Tensor all = bytes_to_tokens(sync_buf_.data(), o_.replicas * o_.batch, seq,
                                          replicas_[0]->model().device());
      // The mean loss over the concatenated batch has the gradient of the average of the
      // replicas' gradients (equal batch sizes): one all-reduce per step.
      const double l = replicas_[0]->train_step_on(all);
      bytes_sent_ += ring_bytes(replicas_[0]->theta().numel() * 4);
      ++syncs_;
      return l;
    }
    double sum = 0;
    for (auto& r : replicas_) sum += r->train_step();
    return sum / static_cast<double>(replicas_.size());
  }

  int64_t ring_bytes(int64_t tensor_bytes) const {
    const int64_t n = o_.replicas;
    return n <= 1 ? 0 : (2 * (n - 1) * tensor_bytes + n - 1) / n;
  }

  Status outer_step() {
    torch::NoGradGuard no_grad;
    switch (o_.method) {
      case Method::kDiloco:
      case Method::kDilocoNesterov: {
        if (wire_.exact()) {
          if (o_.method == Method::kDiloco) diloco_heavy_ball_step(view_ptrs_, *o_.alpha, *o_.beta);
          else diloco_nesterov_step(view_ptrs_, *o_.alpha, *o_.beta);
          bytes_sent_ += ring_bytes(views_[0].theta.numel() * 4);
          break;
        }
        // Each replica's Δ goes through the codec once; everyone gets the mean of the decoded Δs.
        torch::Tensor sum = torch::zeros_like(views_[0].theta);
        int64_t bytes = 0;
        for (auto& v : views_) {
          torch::Tensor got;
          NOLOCO_ASSIGN_OR_RETURN(int64_t n, wire_.send(pseudo_gradient(v), &got));
          sum.add_(got);
          bytes += n;
        }
        sum.div_(static_cast<double>(views_.size()));
        for (auto& v : views_) {
          if (o_.method == Method::kDiloco) heavy_ball_apply(v, sum, *o_.alpha, *o_.beta);
          else nesterov_apply(v, v.phi + sum, *o_.alpha, *o_.beta);  // mean θ = φ + mean Δ
        }
        bytes_sent_ += ring_bytes(bytes / static_cast<int64_t>(views_.size()));
        break;
      }
      case Method::kNoloco: {
        const auto groups = noloco_groups(o_.replicas, o_.group_size, o_.seed, syncs_);
        int64_t most = 0;
        for (const auto& g : groups) {
          NOLOCO_ASSIGN_OR_RETURN(int64_t sent, noloco_exchange(g));
          most = std::max(most, sent);
        }
        bytes_sent_ += most;
        break;
      }
      case Method::kSync:
      case Method::kNone:
        return Status::Ok();
    }
    for (auto& r : replicas_) r->count_outer_step();
    ++syncs_;
    return Status::Ok();
  }

  // One NoLoCo group: every member sends its payload (θ, or Δ and φ) through the wire to the
  // others, and each member mixes its own exact values with what it received. All means are
  // formed before anyone moves. Returns the bytes each member sent.
  Result<int64_t> noloco_exchange(const std::vector<int>& g) {
    std::vector<OuterView*> members;
    for (int i : g) members.push_back(&views_[static_cast<size_t>(i)]);
    const int64_t n = static_cast<int64_t>(members.size());
    if (wire_.exact() && o_.partner_lag == 0) {
      if (theta_wire_) {
        std::vector<torch::Tensor> thetas;
        for (auto* m : members) thetas.push_back(m->theta);
        torch::Tensor mean_theta = mean_of(thetas);
        for (auto* m : members) noloco_apply_theta(*m, mean_theta, *o_.alpha, *o_.beta);
        return (n - 1) * members[0]->theta.numel() * 4;
      }
      noloco_group_step(members, {*o_.alpha, *o_.beta, *o_.gamma});
      return (n - 1) * 2 * members[0]->theta.numel() * 4;
    }
    // Codec: what member j's peers see is decoded_j; member i uses its own exact values.
    std::vector<torch::Tensor> own_a, own_b, got_a, got_b;
    int64_t payload = 0;
    for (auto* m : members) {
      torch::Tensor a = theta_wire_ ? m->theta : pseudo_gradient(*m), ga;
      NOLOCO_ASSIGN_OR_RETURN(int64_t bytes, wire_.send(a, &ga));
      own_a.push_back(a);
      got_a.push_back(ga);
      if (!theta_wire_) {
        torch::Tensor gb;
        NOLOCO_ASSIGN_OR_RETURN(int64_t bytes_b, wire_.send(m->phi, &gb));
        bytes += bytes_b;
        own_b.push_back(m->phi.clone());
        got_b.push_back(gb);
      }
      payload = std::max(payload, bytes);
    }
    std::vector<torch::Tensor> mean_a, mean_b;
    for (size_t i = 0; i < members.size(); ++i) {
      mean_a.push_back(own_a[i].clone());
      if (!theta_wire_) mean_b.push_back(own_b[i].clone());
      for (size_t j = 0; j < members.size(); ++j) {
        if (j == i) continue;
        const LastPayload* seen = lagged_view(g, i, j);
        mean_a[i].add_(seen ? seen->a : got_a[j]);
        if (!theta_wire_) mean_b[i].add_(seen ? seen->b : got_b[j]);
      }
      mean_a[i].div_(static_cast<double>(n));
      if (!theta_wire_) mean_b[i].div_(static_cast<double>(n));
    }
    if (o_.partner_lag > 0)  // kept before anyone moves (exact payloads alias θ and φ)
      for (size_t j = 0; j < members.size(); ++j)
        last_payload_[static_cast<size_t>(g[j])] = {got_a[j].clone(), theta_wire_ ? torch::Tensor() : got_b[j].clone()};
    for (size_t i = 0; i < members.size(); ++i) {
      if (theta_wire_) noloco_apply_theta(*members[i], mean_a[i], *o_.alpha, *o_.beta);
      else noloco_apply(*members[i], mean_a[i], mean_b[i], {*o_.alpha, *o_.beta, *o_.gamma});
    }
    return (n - 1) * payload;
  }

  // What a member's payload looked like at its previous outer step (partner_lag).
  struct LastPayload {
    torch::Tensor a, b;
  };
  // With partner_lag, the group's first member mixes the others' payloads from their previous
  // outer step, as the node that finishes its inner phase first does in a real swarm: its partner
  // is still training and answers with its latest completed snapshot (docs/simulate.md). nullptr:
  // member i sees member j's current payload.
  const LastPayload* lagged_view(const std::vector<int>& g, size_t i, size_t j) const {
    if (o_.partner_lag == 0 || i != 0) return nullptr;
    const LastPayload& last = last_payload_[static_cast<size_t>(g[j])];
    return last.a.defined() ? &last : nullptr;
  }

  int64_t rounds_per_sync() const {
    switch (o_.method) {
      case Method::kSync:
      case Method::kDiloco:
      case Method::kDilocoNesterov: return 2 * (o_.replicas - 1);
      case Method::kNoloco: return 1;
      case Method::kNone: return 0;
    }
    return 0;
  }

  void evaluate(int64_t step, double elapsed) {
    torch::NoGradGuard no_grad;
    std::vector<double> losses;
    for (auto& r : replicas_) losses.push_back(r->eval_loss(eval_windows_, o_.batch));
    // SYNC holds one model standing for N identical replicas.
    const double mean = std::accumulate(losses.begin(), losses.end(), 0.0) / losses.size();
    const auto [mn, mx] = std::minmax_element(losses.begin(), losses.end());
    torch::Tensor& avg = avg_model_->flat();
    avg.zero_();
    for (auto& r : replicas_) avg.add_(r->theta());
    avg.div_(static_cast<double>(replicas_.size()));
    const double avg_loss = eval_model(*avg_model_, eval_windows_, o_.batch);
    double sq = 0.0;
    for (auto& r : replicas_) sq += (r->theta() - avg).pow(2).sum().item<double>();
    const double numel = static_cast<double>(avg.numel());
    const double spread = std::sqrt(sq / (numel * static_cast<double>(replicas_.size())));
    const int64_t ctx = replicas_[0]->config().model.context;
    last_mean_ = mean;
    last_spread_ = spread;
    sinks_.emit(Json()
                    .str("type", "eval")
                    .str("method", method_name(o_.method))
                    .integer("outer_step", syncs_)
                    .integer("inner_step", step)
                    .integer("tokens_seen", step * o_.replicas * o_.batch * ctx)
                    .num("val_loss_mean", mean)
                    .num("val_loss_min", *mn)
                    .num("val_loss_max", *mx)
                    .num("val_loss_avg_model", avg_loss)
                    .num("weight_spread", spread)
                    .integer("bytes_sent_per_replica", bytes_sent_)
                    .integer("rounds_per_sync", rounds_per_sync())
                    .num("lr", replicas_[0]->last_lr())
                    .num("elapsed_s", elapsed)
                    .done());
  }

  void progress_line(int64_t step, double train_loss, double elapsed) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "%s step %lld/%lld  train %.4f  val %.4f  spread %.3g  sent %.1f MB  %.0f s",
                  method_name(o_.method), static_cast<long long>(step),
                  static_cast<long long>(o_.steps), train_loss, last_mean_, last_spread_,
                  static_cast<double>(bytes_sent_) / 1e6, elapsed);
    sinks_.progress(buf);
  }

  SimulateOptions o_;
  const SimulateSinks& sinks_;
  Bytes corpus_;
  CorpusSplit split_;
  int64_t H_ = 1;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<ShardReader> sync_readers_;
  Bytes sync_buf_;
  Bytes eval_bytes_;
  torch::Tensor eval_windows_;
  std::unique_ptr<Gpt> avg_model_;
  std::vector<OuterView> views_;
  std::vector<LastPayload> last_payload_;  // per replica, with partner_lag
  std::vector<OuterView*> view_ptrs_;
  bool theta_wire_ = false;
  Wire wire_{std::nullopt};
  int64_t bytes_sent_ = 0;
  int64_t syncs_ = 0;
  double last_mean_ = 0, last_spread_ = 0;
};

}  // namespace

// Seeded random perfect matching for one outer step: a Fisher-Yates shuffle keyed by
// (seed, outer step), cut into consecutive groups of n (the last one smaller if n does not
// divide N).
std::vector<std::vector<int>> noloco_groups(int n_replicas, int group_size, uint64_t seed,
                                            int64_t outer_step) {
  std::vector<int> order(static_cast<size_t>(n_replicas));
  std::iota(order.begin(), order.end(), 0);
  uint64_t state = mix64(seed ^ mix64(0x9a12ULL + static_cast<uint64_t>(outer_step)));
  for (int i = n_replicas - 1; i > 0; --i) {
    state = mix64(state);
    const int j = static_cast<int>(state % static_cast<uint64_t>(i + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  std::vector<std::vector<int>> groups;
  for (int i = 0; i < n_replicas; i += group_size) {
    groups.emplace_back(order.begin() + i, order.begin() + std::min(n_replicas, i + group_size));
  }
  return groups;
}

Result<Method> parse_method(const std::string& name) {
  if (name == "sync") return Method::kSync;
  if (name == "diloco") return Method::kDiloco;
  if (name == "diloco-nesterov") return Method::kDilocoNesterov;
  if (name == "noloco") return Method::kNoloco;
  if (name == "none") return Method::kNone;
  return invalid_argument("unknown method '" + name +
                          "' (use sync, diloco, diloco-nesterov, noloco or none)");
}

const char* method_name(Method m) {
  switch (m) {
    case Method::kSync: return "sync";
    case Method::kDiloco: return "diloco";
    case Method::kDilocoNesterov: return "diloco-nesterov";
    case Method::kNoloco: return "noloco";
    case Method::kNone: return "none";
  }
  return "?";
}

Status SimulateOptions::resolve() {
  const MethodDefaults d = defaults_for(method);
  if (!H) H = d.H;
  if (!alpha) alpha = d.alpha;
  if (!beta) beta = d.beta;
  if (!gamma) gamma = d.gamma;
  if (method == Method::kSync) H = 1;
  if (method == Method::kNone) H = 0;
  if (replicas < 1 || replicas > 1024) return invalid_argument("--replicas must be in 1..1024");
  if (steps < 1) return invalid_argument("--steps must be >= 1");
  if ((method == Method::kDiloco || method == Method::kDilocoNesterov || method == Method::kNoloco) &&
      *H < 1)
    return invalid_argument("--H must be >= 1");
  if (group_size < 2 && method == Method::kNoloco) return invalid_argument("--group-size must be >= 2");
  if (partner_lag < 0 || partner_lag > 1) return invalid_argument("--partner-lag must be 0 or 1");
  if (partner_lag > 0 && method != Method::kNoloco) return invalid_argument("--partner-lag is for --method noloco");
  if (group_size > replicas && method == Method::kNoloco)
    return invalid_argument("--group-size must not exceed --replicas");
  if (wire != "auto" && wire != "theta" && wire != "delta-phi")
    return invalid_argument("--wire must be auto, theta or delta-phi");
  if (wire == "theta" && method == Method::kNoloco && *gamma != *beta)
    return invalid_argument("--wire theta needs gamma == beta (the theta-only form is exact only then)");
  for (double v : {*alpha, *beta, *gamma})
    if (!std::isfinite(v)) return invalid_argument("alpha, beta and gamma must be finite");
  if (!codec.empty()) {
    if (method == Method::kSync || method == Method::kNone)
      return invalid_argument("--codec applies to outer-step payloads; --method " +
                              std::string(method_name(method)) + " has none here");
    NOLOCO_RETURN_IF_ERROR(parse_codec(codec).status());
  }
  if (!(lr > 0) || !std::isfinite(lr)) return invalid_argument("--lr must be positive");
  if (warmup < 0) return invalid_argument("--warmup must be >= 0");
  if (batch < 1 || batch > 4096) return invalid_argument("--batch must be in 1..4096");
  if (eval_every < 1) return invalid_argument("--eval-every must be >= 1");
  if (eval_batches < 1 || eval_batches > 10000) return invalid_argument("--eval-batches must be in 1..10000");
  if (threads < 0) return invalid_argument("--threads must be >= 0");
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return Status::Ok();
}

Status run_simulation(SimulateOptions options, const SimulateSinks& sinks) {
  NOLOCO_RETURN_IF_ERROR(options.resolve());
  try {
    torch::set_num_threads(options.threads);
    Simulation sim(std::move(options), sinks);
    return sim.run();
  } catch (const c10::Error& e) {
    return internal_error(std::string("simulate: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return internal_error(std::string("simulate: ") + e.what());
  }
}

}  // namespace noloco::trainer
