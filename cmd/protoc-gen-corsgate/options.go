package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	corsgatev1 "github.com/corsgate/corsgate/gen/corsgate/v1"
)

// corsgatePackage is the proto package of corsgate's options. Any extension
// declared in it or below is corsgate's.
const corsgatePackage = "corsgate"

// extKey identifies an extension field: the options message it extends and
// its number.
type extKey struct {
	extendee protoreflect.FullName
	number   protoreflect.FieldNumber
}

// optionChecker finds the corsgate options that this plugin cannot read
// faithfully. The interceptor reads the options it knows whether their Go
// types are linked or they arrived as unknown fields; what it cannot do is
// know what a newer cors.proto added. So the checker refuses, naming the
// element and the field:
//   - a field inside corsgate.v1.Rules that this build does not know (the
//     user's cors.proto is newer than the plugin),
//   - an extension of package corsgate.* other than corsgate.v1.service and
//     corsgate.v1.method,
//   - another extension declared with corsgate's number on ServiceOptions or
//     MethodOptions, whose bytes would be misread as Rules.
type optionChecker struct {
	declared map[extKey]protoreflect.ExtensionDescriptor // every extension in the request
	rules    protoreflect.MessageDescriptor              // corsgate.v1.Rules as the request declares it, or nil
	ours     map[extKey]protoreflect.ExtensionType
	errs     []error
}

func newOptionChecker(gen *protogen.Plugin) *optionChecker {
	c := &optionChecker{
		declared: make(map[extKey]protoreflect.ExtensionDescriptor),
		ours:     make(map[extKey]protoreflect.ExtensionType),
	}
	for _, xt := range []protoreflect.ExtensionType{corsgatev1.E_Service, corsgatev1.E_Method} {
		xd := xt.TypeDescriptor()
		c.ours[extKey{xd.ContainingMessage().FullName(), xd.Number()}] = xt
	}
	rulesName := (&corsgatev1.Rules{}).ProtoReflect().Descriptor().FullName()
	for _, f := range gen.Files {
		c.indexExtensions(f.Desc.Extensions())
		c.indexMessages(f.Desc.Messages())
		if md := f.Desc.Messages().ByName(rulesName.Name()); md != nil && md.FullName() == rulesName {
			c.rules = md
		}
	}
	return c
}

func (c *optionChecker) indexExtensions(xds protoreflect.ExtensionDescriptors) {
	for i := range xds.Len() {
		xd := xds.Get(i)
		c.declared[extKey{xd.ContainingMessage().FullName(), xd.Number()}] = xd
	}
}

func (c *optionChecker) indexMessages(mds protoreflect.MessageDescriptors) {
	for i := range mds.Len() {
		c.indexExtensions(mds.Get(i).Extensions())
		c.indexMessages(mds.Get(i).Messages())
	}
}

// checkFile checks the options of every element of f.
func (c *optionChecker) checkFile(f protoreflect.FileDescriptor) {
	c.checkOptions(f.Path(), f)
	c.checkMessages(f.Path(), f.Messages())
	c.checkEnums(f.Path(), f.Enums())
	c.checkFields(f.Path(), f.Extensions())
	for i := range f.Services().Len() {
		sd := f.Services().Get(i)
		c.checkOptions(f.Path(), sd)
		for j := range sd.Methods().Len() {
			c.checkOptions(f.Path(), sd.Methods().Get(j))
		}
	}
}

func (c *optionChecker) checkMessages(path string, mds protoreflect.MessageDescriptors) {
	for i := range mds.Len() {
		md := mds.Get(i)
		c.checkOptions(path, md)
		c.checkFields(path, md.Fields())
		c.checkFields(path, md.Extensions())
		for j := range md.Oneofs().Len() {
			c.checkOptions(path, md.Oneofs().Get(j))
		}
		c.checkEnums(path, md.Enums())
		c.checkMessages(path, md.Messages())
	}
}

// fieldList is protoreflect.FieldDescriptors or ExtensionDescriptors.
type fieldList interface {
	Len() int
	Get(i int) protoreflect.FieldDescriptor
}

func (c *optionChecker) checkFields(path string, fds fieldList) {
	for i := range fds.Len() {
		c.checkOptions(path, fds.Get(i))
	}
}

func (c *optionChecker) checkEnums(path string, eds protoreflect.EnumDescriptors) {
	for i := range eds.Len() {
		ed := eds.Get(i)
		c.checkOptions(path, ed)
		for j := range ed.Values().Len() {
			c.checkOptions(path, ed.Values().Get(j))
		}
	}
}

// checkOptions checks the options of one element, whether the corsgate
// extensions in them were parsed (types linked) or kept as unknown fields.
func (c *optionChecker) checkOptions(path string, d protoreflect.Descriptor) {
	opts := d.Options()
	if opts == nil {
		return
	}
	m := opts.ProtoReflect()
	if !m.IsValid() {
		return
	}
	extendee := m.Descriptor().FullName()
	where := fmt.Sprintf("%s: %s", path, d.FullName())
	if _, ok := d.(protoreflect.FileDescriptor); ok {
		where = path
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !fd.IsExtension() {
			return true
		}
		key := extKey{extendee, fd.Number()}
		if _, ok := c.ours[key]; ok {
			if c.clashes(where, key) {
				return true
			}
			c.checkRules(where, fd.FullName(), v.Message().GetUnknown())
		}
		return true
	})
	// Options whose types are not linked stay unknown fields: collect the
	// bytes of each number, then decide by the request's declarations.
	byNumber := make(map[protowire.Number][]byte)
	var order []protowire.Number
	for b := m.GetUnknown(); len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("%s: options are malformed: %w", where, protowire.ParseError(n)))
			return
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			c.errs = append(c.errs, fmt.Errorf("%s: options are malformed: %w", where, protowire.ParseError(m)))
			return
		}
		if typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[n : n+m])
			if _, seen := byNumber[num]; !seen {
				order = append(order, num)
			}
			byNumber[num] = append(byNumber[num], v...)
		}
		b = b[n+m:]
	}
	for _, num := range order {
		key := extKey{extendee, num}
		if xt, ok := c.ours[key]; ok {
			if c.clashes(where, key) {
				continue
			}
			rules := &corsgatev1.Rules{}
			if err := proto.Unmarshal(byNumber[num], rules); err != nil {
				c.errs = append(c.errs, fmt.Errorf("%s: option (%s) is malformed: %w", where, xt.TypeDescriptor().FullName(), err))
				continue
			}
			c.checkRules(where, xt.TypeDescriptor().FullName(), rules.ProtoReflect().GetUnknown())
			continue
		}
		if xd, ok := c.declared[key]; ok && isCorsgateName(xd.FullName()) {
			c.errs = append(c.errs, fmt.Errorf("%s uses option (%s), which this protoc-gen-corsgate does not understand: "+
				"the cors.proto it imports is newer than the plugin; update protoc-gen-corsgate", where, xd.FullName()))
		}
	}
}

// clashes reports whether the request declares a different extension than
// corsgate's at key, and if so records the error.
func (c *optionChecker) clashes(where string, key extKey) bool {
	xd, ok := c.declared[key]
	ours := c.ours[key].TypeDescriptor().FullName()
	if !ok || xd.FullName() == ours {
		return false
	}
	c.errs = append(c.errs, fmt.Errorf("%s sets option (%s), whose number %d on %s is corsgate's (%s): "+
		"protoc-gen-corsgate cannot tell the two apart; renumber one of them", where, xd.FullName(), key.number, key.extendee, ours))
	return true
}

// checkRules refuses unknown fields inside corsgate.v1.Rules.
func (c *optionChecker) checkRules(where string, ext protoreflect.FullName, unknown protoreflect.RawFields) {
	var names []string
	for b := unknown; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			break
		}
		b = b[n+m:]
		name := fmt.Sprintf("number %d", num)
		if c.rules != nil {
			if fd := c.rules.Fields().ByNumber(num); fd != nil {
				name = fmt.Sprintf("%s (number %d)", fd.Name(), num)
			}
		}
		if !slices.Contains(names, name) { // a repeated field comes once per element
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	c.errs = append(c.errs, fmt.Errorf("%s sets option (%s) with field %s of corsgate.v1.Rules, which this protoc-gen-corsgate "+
		"does not understand: the cors.proto it imports is newer than the plugin; update protoc-gen-corsgate",
		where, ext, strings.Join(names, ", ")))
}

func (c *optionChecker) err() error {
	return errors.Join(c.errs...)
}

func isCorsgateName(name protoreflect.FullName) bool {
	return name == corsgatePackage || strings.HasPrefix(string(name), corsgatePackage+".")
}
