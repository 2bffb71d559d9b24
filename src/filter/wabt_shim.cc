// SPDX-License-Identifier: MIT
/*
 * The interpreter engine: libwabt 1.0.32's interp API behind the C interface of engine.h.
 * The only C++ in Aperture. Every entry point catches exceptions; no C++ type crosses it.
 *
 * Budgets are not the interpreter's business: the module was rewritten (wasm_instrument.c)
 * to meter its own fuel and call depth, so a call here is a plain Func::Call. After a trap,
 * libwabt leaves the aborted frames on the Thread, so the Thread is replaced before the next
 * call; trap objects are collected every 64 traps.
 */
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "wabt/binary-reader.h"
#include "wabt/cast.h"
#include "wabt/error.h"
#include "wabt/feature.h"
#include "wabt/interp/binary-reader-interp.h"
#include "wabt/interp/interp.h"

#include "engine.h"

namespace
{

using namespace wabt;
using namespace wabt::interp;

/* WebAssembly 1.0 plus sign extension, saturating conversions, multi-value and mutable
 * globals. Bulk memory is out because one memory.fill would cost one unit of fuel. */
Features filter_features()
{
	Features f;
	f.disable_exceptions();
	f.disable_simd();
	f.disable_threads();
	f.disable_function_references();
	f.disable_tail_call();
	f.disable_bulk_memory();
	f.disable_reference_types();
	f.disable_annotations();
	f.disable_code_metadata();
	f.disable_gc();
	f.disable_memory64();
	f.disable_multi_memory();
	f.disable_extended_const();
	f.disable_relaxed_simd();
	return f;
}

const char *const export_names[AP_EXPORT__COUNT] = {
	"ap_abi_version", "ap_event_buffer", "ap_filter", "ap_init", "_initialize",
};

struct Interp {
	explicit Interp(const Features &f) : store(f), thread(new Thread(store))
	{
	}

	Store store;
	std::unique_ptr<Thread> thread;
	Instance::Ptr instance;
	Func::Ptr exports[AP_EXPORT__COUNT];
	Global::Ptr fuel, depth;
	Memory::Ptr memory;
	ap_host_fn host = nullptr;
	void *host_ctx = nullptr;
	int host_trap = 0;
	unsigned traps = 0;
	Values params, results;
};

void copy_str(char *dst, size_t len, const std::string &s)
{
	if (len)
		snprintf(dst, len, "%s", s.c_str());
}

int read_module(const uint8_t *wasm, size_t len, const char *label, ModuleDesc *desc, char *err,
		size_t errlen)
{
	Errors errors;
	ReadBinaryOptions opts(filter_features(), nullptr, false, true, false);
	if (Succeeded(ReadBinaryInterp(label ? label : "filter", wasm, len, opts, &errors, desc)))
		return 0;
	if (errors.empty())
		copy_str(err, errlen, "invalid module");
	else if (errlen)
		snprintf(err, errlen, "offset %zu: %s", errors[0].loc.offset,
			 errors[0].message.c_str());
	return -EINVAL;
}

int classify(const std::string &msg)
{
	if (msg.find("out of bounds") != std::string::npos)
		return AP_ETRAP_MEMORY;
	if (msg.find("unreachable") != std::string::npos)
		return AP_ETRAP_UNREACHABLE;
	if (msg.find("stack exhausted") != std::string::npos)
		return AP_ETRAP_STACK;
	if (msg.find("divide by zero") != std::string::npos ||
	    msg.find("integer overflow") != std::string::npos ||
	    msg.find("invalid conversion") != std::string::npos)
		return AP_ETRAP_ARITH;
	if (msg.find("indirect") != std::string::npos || msg.find("table") != std::string::npos ||
	    msg.find("uninitialized") != std::string::npos)
		return AP_ETRAP_INDIRECT;
	return AP_ETRAP_OTHER;
}

Result host_call(Interp *in, int fn, const FuncType &type, const Values &params, Values &results,
		 Trap::Ptr *out_trap)
{
	uint64_t args[4] = { 0, 0, 0, 0 }, ret = 0;
	struct ap_hostcall hc;
	int trap;

	for (size_t i = 0; i < params.size() && i < 4; i++)
		args[i] = params[i].Get<u32>();
	hc.mem = in->memory ? in->memory->UnsafeData() : nullptr;
	hc.mem_size = in->memory ? in->memory->ByteSize() : 0;
	hc.fuel = static_cast<int64_t>(in->fuel->UnsafeGet<u64>());
	trap = in->host(in->host_ctx, static_cast<unsigned>(fn), args, &ret, &hc);
	in->fuel->UnsafeSet(Value::Make(static_cast<u64>(hc.fuel)));
	if (trap) {
		in->host_trap = trap;
		*out_trap = Trap::New(in->store, "host function trap");
		return Result::Error;
	}
	for (size_t i = 0; i < type.results.size(); i++) {
		if (type.results[i] == Type::I64)
			results[i] = Value::Make(static_cast<u64>(ret));
		else
			results[i] = Value::Make(static_cast<u32>(ret));
	}
	return Result::Ok;
}

int create(struct ap_engine_load *ld, Interp **out, char *err, size_t errlen)
{
	ModuleDesc desc;
	int ret = read_module(ld->wasm, ld->len, ld->label, &desc, err, errlen);
	if (ret)
		return ret;

	std::unique_ptr<Interp> in(new Interp(filter_features()));
	in->host = ld->host;
	in->host_ctx = ld->host_ctx;
	Module::Ptr module = Module::New(in->store, std::move(desc));
	RefVec imports;
	const auto &itypes = module->import_types();
	if (itypes.size() != ld->nhostfns) {
		copy_str(err, errlen, "import count mismatch");
		return -EINVAL;
	}
	for (size_t i = 0; i < itypes.size(); i++) {
		const FuncType *ft = dyn_cast<FuncType>(itypes[i].type.get());
		if (!ft) {
			copy_str(err, errlen, "non-function import");
			return -EINVAL;
		}
		Interp *self = in.get();
		int fn = ld->hostfns[i];
		FuncType type = *ft;
		HostFunc::Ptr hf = HostFunc::New(
		    in->store, *ft,
		    [self, fn, type](Thread &, const Values &params, Values &results,
				     Trap::Ptr *out_trap) -> Result {
			    return host_call(self, fn, type, params, results, out_trap);
		    });
		imports.push_back(hf.ref());
	}
	Trap::Ptr trap;
	in->instance = Instance::Instantiate(in->store, module.ref(), imports, &trap);
	if (!in->instance) {
		if (errlen)
			snprintf(err, errlen, "instantiation failed: %s",
				 trap ? trap->message().c_str() : "unknown reason");
		return -EINVAL;
	}
	const auto &etypes = module->export_types();
	const RefVec &erefs = in->instance->exports();
	for (size_t i = 0; i < etypes.size(); i++) {
		const std::string &name = etypes[i].name;
		ExternKind kind = etypes[i].type->kind;
		if (kind == ExternKind::Memory && name == "memory")
			in->memory = in->store.UnsafeGet<Memory>(erefs[i]);
		else if (kind == ExternKind::Global && name == AP_METER_FUEL_NAME)
			in->fuel = in->store.UnsafeGet<Global>(erefs[i]);
		else if (kind == ExternKind::Global && name == AP_METER_DEPTH_NAME)
			in->depth = in->store.UnsafeGet<Global>(erefs[i]);
		else if (kind == ExternKind::Func)
			for (int e = 0; e < AP_EXPORT__COUNT; e++)
				if (name == export_names[e])
					in->exports[e] = in->store.UnsafeGet<Func>(erefs[i]);
	}
	if (!in->memory || !in->fuel || !in->depth || !in->exports[AP_EXPORT_FILTER]) {
		copy_str(err, errlen, "instrumented module lacks an expected export");
		return -EINVAL;
	}
	*out = in.release();
	return 0;
}

int call(Interp *in, struct ap_engine_call *c)
{
	Func::Ptr &f = in->exports[c->export_id];
	Trap::Ptr trap;
	int kind;

	c->result = 0;
	c->host_trap = 0;
	c->msg[0] = '\0';
	if (!f) {
		c->mem = in->memory->UnsafeData();
		c->mem_size = in->memory->ByteSize();
		snprintf(c->msg, sizeof(c->msg), "no export %s", export_names[c->export_id]);
		return AP_ETRAP_OTHER;
	}
	in->fuel->UnsafeSet(Value::Make(static_cast<u64>(c->fuel)));
	in->depth->UnsafeSet(Value::Make(static_cast<u32>(0)));
	in->params.resize(c->nargs);
	for (unsigned i = 0; i < c->nargs; i++)
		in->params[i] = Value::Make(c->args[i]);
	in->results.clear();
	in->host_trap = 0;
	Result r = f->Call(*in->thread, in->params, in->results, &trap);
	c->fuel = static_cast<int64_t>(in->fuel->UnsafeGet<u64>());
	c->depth = in->depth->UnsafeGet<u32>();
	c->mem = in->memory->UnsafeData();
	c->mem_size = in->memory->ByteSize();
	if (Succeeded(r)) {
		if (!in->results.empty())
			c->result = in->results[0].Get<u32>();
		return AP_ETRAP_NONE;
	}
	std::string msg = trap ? trap->message() : std::string("call failed");
	copy_str(c->msg, sizeof(c->msg), msg);
	if (in->host_trap) {
		c->host_trap = in->host_trap;
		kind = AP_ETRAP_HOST;
	} else {
		kind = classify(msg);
	}
	trap.reset();
	/* The aborted frames stay on the thread: start the next call on a fresh one. */
	in->thread.reset(new Thread(in->store));
	if (++in->traps % 64 == 0)
		in->store.Collect();
	return kind;
}

} // namespace

extern "C" {

int ap_wabt_validate(const uint8_t *wasm, size_t len, char *err, size_t errlen)
{
	try {
		ModuleDesc desc;
		return read_module(wasm, len, nullptr, &desc, err, errlen);
	} catch (...) {
		copy_str(err, errlen, "out of memory while validating the module");
		return -ENOMEM;
	}
}

static int interp_create(struct ap_engine_load *ld, void **inst, char *err, size_t errlen)
{
	try {
		Interp *in = nullptr;
		int ret = create(ld, &in, err, errlen);
		*inst = in;
		return ret;
	} catch (...) {
		copy_str(err, errlen, "out of memory while loading the module");
		return -ENOMEM;
	}
}

static bool interp_has_export(void *inst, int id)
{
	return static_cast<bool>(static_cast<Interp *>(inst)->exports[id]);
}

static int interp_call(void *inst, struct ap_engine_call *c)
{
	try {
		return call(static_cast<Interp *>(inst), c);
	} catch (...) {
		snprintf(c->msg, sizeof(c->msg), "interpreter error (out of memory)");
		return AP_ETRAP_OTHER;
	}
}

static void interp_direct(void *inst, int (**fn)(void *, struct ap_engine_call *), void **ctx)
{
	*fn = interp_call;
	*ctx = inst;
}

static uint8_t *interp_memory(void *inst, uint64_t *size)
{
	Interp *in = static_cast<Interp *>(inst);
	*size = in->memory->ByteSize();
	return in->memory->UnsafeData();
}

static void interp_destroy(void *inst)
{
	try {
		delete static_cast<Interp *>(inst);
	} catch (...) {
	}
}

const struct ap_engine_ops ap_engine_interp = {
	"interp",      interp_create, interp_has_export, interp_call,
	interp_direct, interp_memory, interp_destroy,
};

} // extern "C"
